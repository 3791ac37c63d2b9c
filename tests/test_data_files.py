"""Which file holds a task's split: ``{task}-{split}.csv`` or the public release's names
(``ids-sst-train.csv``, ``sts-test-student.csv``); the public files read as released; samples of
a data folder."""

from pathlib import Path

import pytest

from mtl_tutor.data import DataFormatError, get_task, load_task, read_task_file, task_file
from mtl_tutor.data.subset import write_sample, write_subset

SST_ROWS = "".join(f"{i}\tid{i}\tsentence {i} .\t{i % 5}\n" for i in range(20))


def test_each_task_names_its_files_in_both_layouts():
    assert get_task("sst").file_names("train") == ("sst-train.csv", "ids-sst-train.csv")
    assert get_task("cfimdb").file_names("test") == ("cfimdb-test.csv",
                                                     "ids-cfimdb-test-student.csv")
    assert get_task("quora").file_names("dev") == ("quora-dev.csv",)
    assert get_task("sts").file_names("test") == ("sts-test.csv", "sts-test-student.csv")


@pytest.mark.parametrize(("task", "name", "split"), [
    ("sst", "ids-sst-test-student.csv", "test"), ("sst", "sst-dev.csv", "dev"),
    ("sts", "sts-test-student.csv", "test"), ("quora", "quora-train.csv", "train"),
    ("cfimdb", "ids-cfimdb-dev.csv", "dev"), ("sst", "sts-dev.csv", None),
    ("sst", "ids-sst-.csv", None)])
def test_the_split_is_read_back_from_either_name(task, name, split):
    assert get_task(task).split_of(name) == split


def test_the_public_name_is_found_and_its_split_recorded(tmp_path):
    (tmp_path / "ids-sst-dev.csv").write_text("\tid\tsentence\tsentiment\n" + SST_ROWS)
    assert task_file(tmp_path, "sst", "dev") == tmp_path / "ids-sst-dev.csv"
    data = load_task(tmp_path, "sst", "dev")
    assert (len(data), data.split, data.examples[3].label) == (20, "dev", 3.0)
    assert read_task_file(tmp_path / "ids-sst-dev.csv", "sst").split == "dev"


def test_a_file_under_both_names_is_an_error_naming_both(tmp_path):
    for name in ("sst-dev.csv", "ids-sst-dev.csv"):
        (tmp_path / name).write_text("\tid\tsentence\tsentiment\n" + SST_ROWS)
    with pytest.raises(DataFormatError, match="both sst-dev.csv and ids-sst-dev.csv"):
        load_task(tmp_path, "sst", "dev")


def test_a_missing_file_names_both_names_and_the_command_that_fetches_it(tmp_path):
    with pytest.raises(DataFormatError) as error:
        load_task(tmp_path, "sts", "test")
    message = str(error.value)
    assert "sts-test.csv or sts-test-student.csv" in message
    assert "mtl-tutor data download --tasks sts" in message
    with pytest.raises(DataFormatError, match="no such directory"):
        load_task(tmp_path / "nope", "sts", "dev")


def test_a_second_leading_index_column_is_skipped(tmp_path):
    """The public SST and CFIMDB test inputs: header ``0<TAB><TAB>id<TAB>sentence``."""
    (tmp_path / "ids-sst-test-student.csv").write_text(
        "0\t\tid\tsentence\n1\t0.0\tab1\t A film .\n2\t1.0\tab2\t Another one .\n")
    data = load_task(tmp_path, "sst", "test")
    assert [(e.id, e.text_a, e.label) for e in data.examples] == [
        ("ab1", "A film .", None), ("ab2", "Another one .", None)]
    (tmp_path / "sst-dev.csv").write_text("x\t\tid\tsentence\tsentiment\n1\t0\ta\tb\t1\n")
    with pytest.raises(DataFormatError, match="wrong header"):
        load_task(tmp_path, "sst", "dev")  # only index-like columns are skipped


@pytest.mark.filterwarnings("ignore::mtl_tutor.data.DataWarning")
@pytest.mark.parametrize(("task", "split", "rows", "first_id"), [
    ("sst", "train", 8544, "32a4f146782cbde1b7fa65799"),
    ("sst", "test", 2210, "b7573736a6ddf7be102b7fee0"),
    ("cfimdb", "test", 488, "c916d7750936543cf3a109be1"),
    ("quora", "dev", 20214, "fbfddc56315fb8a39e7608fa0"),
    ("sts", "test", 1725, "cce9b526b3590d2ca2178584f"),
])
def test_the_public_files_read_as_released(public_data_dir, task, split, rows, first_id):
    data = load_task(public_data_dir, task, split)  # quora-dev.csv has rows without a label
    assert (len(data) + len(data.issues), data.examples[0].id, data.split) == (
        rows, first_id, split)
    assert len(data.issues) <= 3
    assert all((e.label is None) == (split == "test") for e in data.examples)
    if split == "test" and task == "sst":
        assert data.examples[0].text_a == "Effective but too-tepid biopic"


def quoted_file(path: Path) -> Path:
    path.write_text('\tid\tsentence1\tsentence2\tis_duplicate\n'
                    '0\ta\t"He said ""hi"""\tplain\t1.0\n'
                    '1\tb\t"two\nlines"\tx\t0.0\n'
                    + "".join(f"{i}\tq{i}\tone {i}\ttwo {i}\t{i % 2}.0\n" for i in range(2, 30)))
    return path


def test_a_sample_keeps_the_fields_and_the_file_order(tmp_path):
    source = quoted_file(tmp_path / "quora-dev.csv")
    assert write_sample(source, tmp_path / "all.csv", None, seed=0) == 30
    everything = read_task_file(tmp_path / "all.csv", "quora")
    assert everything.examples[0].text_a == 'He said "hi"'
    assert everything.examples[1].text_a == "two\nlines"
    original = read_task_file(source, "quora").examples
    assert [(e.id, e.text_a, e.text_b, e.label) for e in everything.examples] == [
        (e.id, e.text_a, e.text_b, e.label) for e in original]
    assert write_sample(source, tmp_path / "some.csv", 7, seed=1) == 7
    ids = [e.id for e in read_task_file(tmp_path / "some.csv", "quora").examples]
    order = [e.id for e in original]
    assert len(set(ids)) == 7 and ids == sorted(ids, key=order.index)
    assert write_sample(source, tmp_path / "again.csv", 7, seed=1) == 7
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "some.csv").read_bytes()


def test_a_subset_reads_public_names_and_writes_short_ones(public_data_dir, tmp_path):
    written = write_subset(public_data_dir, tmp_path, ["sst", "sts"],
                           {"train": 50, "dev": None}, seed=0)
    assert written == {"sst": {"train": 50, "dev": 1101}, "sts": {"train": 50, "dev": 863}}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sst-dev.csv", "sst-train.csv", "sts-dev.csv", "sts-train.csv"]
    assert (tmp_path / "sts-dev.csv").read_bytes() == (public_data_dir / "sts-dev.csv").read_bytes()
    with pytest.raises(ValueError, match=r"rows\['train'\] must be >= 1"):
        write_subset(public_data_dir, tmp_path, ["sst"], {"train": 0})
