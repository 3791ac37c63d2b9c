"""Projected attention layers: the task term at the feed-forward add-norm (checked against a hand
computation of one layer), task-specific parameters outside G, one task active at a time."""

import doctest
import math

import pytest
import torch
import torch.nn.functional as F

from mtl_tutor import load_backbone, pals
from mtl_tutor.bert import BertModel
from mtl_tutor.bert.config import TINY, BertConfig
from mtl_tutor.checkpoint import load_run
from mtl_tutor.data import TaskBatches, load_task
from mtl_tutor.data.tasks import get_task
from mtl_tutor.evaluate import evaluate, ordered_batches
from mtl_tutor.model import MultitaskModel
from mtl_tutor.pals import ProjectedAttentionLayers
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import train

TASKS = ("sst", "quora", "sts")


def build(pals, seed=0):
    bert, _ = load_backbone("tiny", seed=seed)
    return MultitaskModel(bert, {t: get_task(t) for t in TASKS}, pals=pals).eval()


@pytest.fixture(scope="module")
def batches(tiny_backbone, synthetic_dir):
    _, tokenizer = tiny_backbone
    return {t: next(TaskBatches(load_task(synthetic_dir, t, "train"), tokenizer, 6))
            for t in TASKS}


def randomise(pal_layers, std=0.5):
    """Non-zero V^D and biases, so that TS(x) != 0."""
    torch.manual_seed(1)
    with torch.no_grad():
        for pal in pal_layers.tasks.values():
            for p in (pal.decoder.weight, pal.decoder.bias, pal.encoder.bias):
                p.normal_(std=std)


def layer_norm(z, ln):
    return F.layer_norm(z, z.shape[-1:], ln.weight, ln.bias, ln.eps)


def hand_pal(pal, x, mask, layer):
    """TS^l(x) = GELU(V^D g^l(V^E x + b^E) + b^D), g^l: multi-head attention over real keys."""
    z = x @ pal.encoder.weight.T + pal.encoder.bias  # (B, T, d_s)
    attention = pal.attention[layer]
    B, T, S = z.shape
    H = attention.num_heads
    q, k, v = (z @ attention.qkv.weight.T + attention.qkv.bias).split(S, dim=-1)
    q, k, v = (t.reshape(B, T, H, S // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hs)
    scores = q @ k.transpose(-1, -2) / math.sqrt(S // H)  # (B, H, T, T)
    scores = scores.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, S)
    return F.gelu(y @ pal.decoder.weight.T + pal.decoder.bias)


def test_the_pal_term_joins_the_feed_forward_add_norm():
    torch.manual_seed(0)
    bert = BertModel(BertConfig(**{**TINY.to_dict(), "vocab_size": 50, "num_hidden_layers": 1,
                                   "attention": "padded"})).eval()
    layers = ProjectedAttentionLayers(bert, ["sst"]).eval()
    randomise(layers)
    ids = torch.randint(1, 50, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    with torch.no_grad(), layers.use("sst"):
        out = bert(ids, mask)["last_hidden_state"]
        block = bert.encoder.layer[0]
        x = bert.embeddings(ids, torch.arange(7), None)  # the layer's input
        # The attention sub-layer by hand: LN(x + W_o MH(x)), MH with the backbone's heads.
        sa = block.attention.self
        C, H = x.shape[-1], sa.n_head
        q, k, v = ((x @ m.weight.T + m.bias).reshape(2, 7, H, C // H).transpose(1, 2)
                   for m in (sa.query, sa.key, sa.value))
        scores = (q @ k.transpose(-1, -2) / math.sqrt(C // H)).masked_fill(
            ~mask.bool()[:, None, None, :], float("-inf"))
        mh = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 7, C)
        so = block.attention.output
        a = layer_norm(x + mh @ so.dense.weight.T + so.dense.bias, so.LayerNorm)
        ffn = block.output.dense(block.intermediate(a))
        ts = hand_pal(layers.tasks["sst"], x, mask, 0)
        expected = layer_norm(a + ffn + ts, block.output.LayerNorm)  # the paper's position
        # The same term at the attention add-norm instead gives another output:
        a_elsewhere = layer_norm(x + mh @ so.dense.weight.T + so.dense.bias + ts, so.LayerNorm)
        elsewhere = layer_norm(a_elsewhere + block.output.dense(block.intermediate(a_elsewhere)),
                               block.output.LayerNorm)
    real = mask.bool()
    assert ts[real].abs().max() > 0.1  # the task term is far from zero
    assert torch.allclose(out[real], expected[real], atol=1e-5)
    assert (out[real] - elsewhere[real]).abs().max() > 1e-2


def test_default_size_keeps_the_papers_ratio_and_the_reference_codes_heads():
    assert doctest.testmod(pals).failed == 0
    model = build({})
    assert (model.pals.size, model.pals.num_heads) == (18, 6)  # tiny: d_m = 64
    pal = model.pals.tasks["sst"]
    d_m, d_s, L = 64, 18, model.bert.config.num_hidden_layers
    expected = (d_m * d_s + d_s) + (d_s * d_m + d_m) + L * (3 * d_s * d_s + 3 * d_s)
    assert sum(p.numel() for p in pal.parameters()) == expected


def test_pal_parameters_are_task_parameters_and_never_shared():
    model = build({"size": 8, "num_heads": 2})
    shared = {id(p) for p in model.shared_parameters()}
    pal = {id(p) for p in model.pals.parameters()}
    assert pal and not pal & shared
    assert pal <= {id(p) for p in model.task_parameters()}
    assert not any(name.startswith("pals.") for name, _ in model.bert.named_parameters())
    # one V^E and V^D per task, one attention per layer per task
    assert set(model.pals.tasks) == set(TASKS)
    assert len(model.pals.tasks["sst"].attention) == model.bert.config.num_hidden_layers


def test_fresh_pals_leave_the_backbone_function_unchanged(batches):
    plain, with_pals = build(None), build({"size": 8, "num_heads": 2})
    with_pals.heads.load_state_dict(plain.heads.state_dict())
    for t in TASKS:
        assert torch.equal(with_pals(batches[t]), plain(batches[t]))
    randomise(with_pals.pals)
    assert not torch.allclose(with_pals(batches["sst"]), plain(batches["sst"]), atol=1e-4)


def test_only_the_batch_tasks_pal_runs_and_gets_gradients(batches):
    plain, model = build(None), build({"size": 8, "num_heads": 2, "tasks": ["sst"]})
    model.heads.load_state_dict(plain.heads.state_dict())
    randomise(model.pals)
    assert not torch.allclose(model(batches["sst"]), plain(batches["sst"]), atol=1e-4)
    assert torch.equal(model(batches["sts"]), plain(batches["sts"]))
    both = build({"size": 8, "num_heads": 2})
    randomise(both.pals)
    both.loss(batches["quora"]).backward()
    assert all(p.grad is None for p in both.pals.tasks["sst"].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in both.pals.tasks["quora"].parameters())


def test_pals_give_the_same_outputs_padded_and_unpadded(batches):
    model = build({"size": 8, "num_heads": 2})
    randomise(model.pals)
    model.bert.use_attention("padded")
    padded = {t: model(batches[t]) for t in TASKS}
    model.bert.use_attention("unpadded")
    for t in TASKS:
        assert torch.allclose(model(batches[t]), padded[t], atol=1e-5)


def test_pal_options_are_validated():
    with pytest.raises(ValueError, match="divisible"):
        build({"size": 10, "num_heads": 4})
    with pytest.raises(ValueError, match="num_heads"):
        build({"num_heads": 0})
    with pytest.raises(ValueError, match="dropout"):
        build({"size": 8, "num_heads": 2, "dropout": 1.5})


def test_a_pal_run_reloads_to_the_model_it_evaluated(synthetic_dir, tmp_path, tiny_backbone):
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         epochs=1, max_steps=2, batch_size=8, max_length=32, eval_batch_size=32,
                         progress=False, combiner="pcgrad", pals={"size": 8, "num_heads": 2})
    summary = train(config)
    model, tokenizer, _ = load_run(tmp_path / "run")
    assert model.pals is not None
    assert any(p.abs().sum() > 0 for p in model.pals.tasks["sst"].decoder.parameters())
    loaders = {t: ordered_batches(load_task(synthetic_dir, t, "dev"), tokenizer, 32,
                                  max_length=32) for t in TASKS}
    metrics = evaluate(model.eval(), loaders)
    best = {k: v for k, v in summary["best"].items() if k not in ("step", "epoch")}
    assert metrics == pytest.approx(best, abs=1e-6)
