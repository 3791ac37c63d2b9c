"""collate: dynamic padding, bi- and cross-encoder pairs, label dtypes."""

import pytest
import torch

from mtl_tutor import load_backbone
from mtl_tutor.data import Batch, Example, collate, get_task


@pytest.fixture(scope="module")
def tokenizer():
    return load_backbone("tiny")[1]


def single(*texts, labels=None):
    labels = labels or [None] * len(texts)
    return [Example(f"s{i}", t, None, y, i + 2) for i, (t, y) in enumerate(zip(texts, labels))]


PAIRS = [Example("p0", "a dog runs", "a dog is running fast", 1.0, 2),
         Example("p1", "cats", "a cat", 0.0, 3)]


def test_single_sentences_pad_to_the_longest_in_the_batch(tokenizer):
    batch = collate(single("good", "a much longer sentence than the other one", labels=[3.0, 1.0]),
                    get_task("sst"), tokenizer)
    assert set(batch.inputs) == {"input_ids", "attention_mask"}
    lengths = [len(tokenizer(t)["input_ids"]) for t in ("good", "a much longer sentence than "
                                                           "the other one")]
    assert batch.inputs["input_ids"].shape == (2, max(lengths))
    assert batch.inputs["attention_mask"].sum(1).tolist() == lengths
    assert batch.labels.dtype == torch.long and batch.labels.tolist() == [3, 1]
    assert batch.ids == ["s0", "s1"] and len(batch) == 2 and batch.task == "sst"


def test_bi_encoder_pads_each_side_separately(tokenizer):
    batch = collate(PAIRS, get_task("quora"), tokenizer, pair_encoding="bi")
    assert set(batch.inputs) == {"input_ids_a", "attention_mask_a", "input_ids_b",
                                 "attention_mask_b"}
    assert batch.inputs["attention_mask_a"].sum(1).tolist() == [5, 3]  # [CLS] a dog runs [SEP]
    assert batch.inputs["input_ids_b"].shape[1] == 7  # [CLS] a dog is running fast [SEP]
    assert batch.labels.dtype == torch.float32 and batch.labels.tolist() == [1.0, 0.0]


def test_cross_encoder_is_cls_a_sep_b_sep_with_segment_ids(tokenizer):
    batch = collate(PAIRS, get_task("sts"), tokenizer, pair_encoding="cross")
    assert set(batch.inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    ids = batch.inputs["input_ids"][0].tolist()
    assert tokenizer.decode(ids) == "[CLS] a dog runs [SEP] a dog is running fast [SEP]"
    assert batch.inputs["token_type_ids"][0].tolist() == [0] * 5 + [1] * 6
    assert batch.inputs["attention_mask"][1].tolist() == [1] * 6 + [0] * 5
    assert batch.labels.dtype == torch.float32


def test_truncates_to_max_length(tokenizer):
    batch = collate(single("word " * 300), get_task("sst"), tokenizer, max_length=16)
    assert batch.inputs["input_ids"].shape == (1, 16)
    cross = collate([Example("x", "word " * 300, "other " * 300, 2.0, 2)], get_task("sts"),
                    tokenizer, pair_encoding="cross", max_length=16)
    assert cross.inputs["input_ids"].shape == (1, 16)


def test_unlabelled_examples_give_no_labels(tokenizer):
    assert collate(single("a", "b"), get_task("sst"), tokenizer).labels is None
    with pytest.raises(ValueError, match="mixes labelled and unlabelled"):
        collate(single("a", "b", labels=[1.0, None]), get_task("sst"), tokenizer)


def test_rejects_unknown_pair_encoding_and_empty_batches(tokenizer):
    with pytest.raises(ValueError, match="pair_encoding must be one of bi, cross"):
        collate(PAIRS, get_task("sts"), tokenizer, pair_encoding="siamese")
    with pytest.raises(ValueError, match="at least one example"):
        collate([], get_task("sts"), tokenizer)


def test_batch_to_moves_every_tensor(tokenizer):
    batch = collate(PAIRS, get_task("sts"), tokenizer).to(torch.device("meta"))
    assert isinstance(batch, Batch) and batch.labels.device.type == "meta"
    assert all(t.device.type == "meta" for t in batch.inputs.values())
