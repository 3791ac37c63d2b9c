"""The synthetic corpus: CS224N format, determinism, labels that follow the words, the knob."""

import warnings

import pytest

from mtl_tutor.data import MULTITASK, DataWarning, load_task, load_tasks, write_synthetic_corpus
from mtl_tutor.data.synthetic import NEGATIVE, NOUNS, POSITIVE

ALL_NOUNS = {n for nouns in NOUNS.values() for n in nouns}


def polarity(text: str) -> int:
    """The SST label the adjectives of ``text`` spell: 2 + #positive - #negative."""
    words = text.split()
    return 2 + sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)


def nouns(text: str) -> set[str]:
    return {w for w in text.split() if w in ALL_NOUNS}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=400, n_dev=50,
                                  n_test=30, conflict=0.25, seed=1)


def test_files_load_through_io_with_no_issues(corpus):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        for split, size in (("train", 400), ("dev", 50), ("test", 30)):
            for task in MULTITASK:
                data = load_task(corpus, task, split, strict=True)
                assert len(data) == size and data.issues == []
                assert all((e.label is None) == (split == "test") for e in data.examples)
    header = (corpus / "quora-test.csv").read_text().splitlines()[0]
    assert header == "\tid\tsentence1\tsentence2"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = write_synthetic_corpus(tmp_path / "a", seed=3, conflict=0.7)
    b = write_synthetic_corpus(tmp_path / "b", seed=3, conflict=0.7)
    c = write_synthetic_corpus(tmp_path / "c", seed=4, conflict=0.7)
    files = sorted(p.name for p in a.iterdir())
    assert len(files) == 9
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert all((a / f).read_bytes() != (c / f).read_bytes() for f in files)


def test_default_sizes_are_600_200_100(tmp_path):
    d = write_synthetic_corpus(tmp_path)
    assert [len(load_task(d, "sts", s)) for s in ("train", "dev", "test")] == [600, 200, 100]


def test_sst_label_is_spelled_by_the_adjectives_and_all_classes_occur(corpus):
    examples = load_task(corpus, "sst", "train").examples
    assert all(polarity(e.text_a) == e.label for e in examples)
    assert {e.label for e in examples} == {0.0, 1.0, 2.0, 3.0, 4.0}


def test_pair_labels_follow_the_shared_nouns(corpus):
    data = load_tasks(corpus, ("quora", "sts"))
    for e in data["quora"].examples:
        assert (nouns(e.text_a) == nouns(e.text_b)) == (e.label == 1.0)
        assert len(nouns(e.text_a) & nouns(e.text_b)) in ((0, 1, 2) if e.label == 0 else (4,))
    for e in data["sts"].examples:
        assert abs(len(nouns(e.text_a) & nouns(e.text_b)) - e.label) <= 0.4 + 1e-9
    assert 0.4 < sum(e.label for e in data["quora"].examples) / 400 < 0.6


def agreement_rates(directory) -> tuple[float, float]:
    """P(polarities agree | close) and P(agree | not close) over quora and sts train pairs."""
    agree = {True: [], False: []}
    for task, data in load_tasks(directory, ("quora", "sts")).items():
        for e in data.examples:
            close = e.label == 1.0 if task == "quora" else e.label >= 2.5
            agree[close].append((polarity(e.text_a) > 2) == (polarity(e.text_b) > 2))
    return tuple(sum(v) / len(v) for v in (agree[True], agree[False]))


@pytest.mark.parametrize("conflict", [0.0, 0.3, 1.0])
def test_conflict_sets_how_much_polarity_agreement_tells_about_the_label(tmp_path, conflict):
    close, far = agreement_rates(write_synthetic_corpus(tmp_path, n_train=1000, conflict=conflict))
    assert close == pytest.approx(1 - conflict / 2, abs=0.04)
    assert far == pytest.approx(conflict / 2, abs=0.04)


def test_pair_sentences_are_always_polar(corpus):
    for data in load_tasks(corpus, ("quora", "sts")).values():
        assert all(polarity(t) != 2 for e in data.examples for t in (e.text_a, e.text_b))


@pytest.mark.parametrize("kwargs, message", [
    ({"conflict": 1.5}, "conflict must lie in"), ({"n_train": 0}, "n_train must be a positive"),
    ({"n_test": 2.5}, "n_test must be a positive"),
])
def test_invalid_arguments_name_the_parameter(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_synthetic_corpus(tmp_path, **kwargs)
