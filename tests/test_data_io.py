"""Reading CS224N task files: the format, file-level errors, row-level defects, repeated ids,
the real data."""

import csv
import warnings
from pathlib import Path

import pytest

from mtl_tutor.data import (
    MULTITASK,
    TASKS,
    DataFormatError,
    DataIssue,
    DataWarning,
    get_task,
    load_task,
    load_tasks,
    read_task_file,
    write_issues,
)

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/cs224n"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real CS224N data not found at {REAL}")

SST_HEADER = "\tid\tsentence\tsentiment\n"
GOOD_SST_LINES = [f"{i}\tid{i}\t a sentence number {i} .\t{i % 5}\n" for i in range(100)]
GOOD_SST_ROWS = "".join(GOOD_SST_LINES)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_get_task_knows_the_four_tasks_and_names_them_on_error():
    assert MULTITASK == ("sst", "quora", "sts")
    assert get_task("sts").label_range == (0, 5) and get_task("sst").num_labels == 5
    assert get_task(TASKS["quora"]) is TASKS["quora"]
    with pytest.raises(ValueError, match="sst, quora, sts, cfimdb"):
        get_task("mnli")


def test_reads_rows_with_ids_texts_labels_and_line_numbers(tmp_path):
    path = write(tmp_path, "sts-dev.csv", "\tid\tsentence1\tsentence2\tsimilarity\n"
                 "7\tx1\tA man sings.\tA man is singing.\t4.6\n"
                 "9\tx2\tA dog.\tA cat.\t0.5\n")
    data = read_task_file(path, "sts")
    assert data.split == "dev" and data.issues == [] and len(data) == 2
    first = data.examples[0]
    assert (first.id, first.text_a, first.text_b, first.label, first.line) == (
        "x1", "A man sings.", "A man is singing.", 4.6, 2)
    assert data.examples[1].line == 3


def test_doubled_quotes_are_unquoted_and_lines_stay_physical_across_multiline_fields(tmp_path):
    path = write(tmp_path, "quora-train.csv", "\tid\tsentence1\tsentence2\tis_duplicate\n"
                 '0\ta\t"He said ""hi"""\tplain\t1.0\n'
                 '1\tb\t"two\nlines"\tplain\t0.0\n'
                 "2\tc\tafter\t\t0.0\n")
    with pytest.warns(DataWarning):
        data = read_task_file(path, "quora", max_defect_fraction=1.0)
    assert [e.text_a for e in data.examples] == ['He said "hi"', "two\nlines"]
    assert [e.line for e in data.examples] == [2, 3]
    assert [str(i) for i in data.issues] == [f"{path}:5: empty sentence2"]


def test_test_files_load_without_labels(tmp_path):
    write(tmp_path, "sst-test.csv", "\tid\tsentence\n0\tt0\tfine .\n1\tt1\tbad .\n")
    data = load_task(tmp_path, "sst", "test")
    assert [(e.id, e.label) for e in data.examples] == [("t0", None), ("t1", None)]


def test_labelled_file_read_for_prediction_ignores_its_labels(tmp_path):
    path = write(tmp_path, "sst-dev.csv", SST_HEADER + "0\tx\tgood .\t3\n")
    assert read_task_file(path, "sst", labelled=False).examples[0].label is None


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"sst-train\.csv: no such file"):
        load_task(tmp_path, "sst", "train")


def test_wrong_header_names_file_line_and_expected_columns(tmp_path):
    path = write(tmp_path, "sst-train.csv", "\tid\ttext\tlabel\n0\tx\tgood .\t3\n")
    with pytest.raises(DataFormatError, match=r"sst-train\.csv:1: wrong header .*sentence"):
        read_task_file(path, "sst")


def test_test_file_read_as_labelled_says_so(tmp_path):
    path = write(tmp_path, "sst-train.csv", "\tid\tsentence\n0\tx\tgood .\n")
    with pytest.raises(DataFormatError, match="no label column 'sentiment'.*labelled=False"):
        read_task_file(path, "sst")


def test_comma_separated_file_is_rejected(tmp_path):
    path = write(tmp_path, "sst-train.csv", ",id,sentence,sentiment\n0,x,good .,3\n")
    with pytest.raises(DataFormatError, match=r":1: no tab in the header \(it looks comma-sep"):
        read_task_file(path, "sst")


def test_undecodable_bytes_report_their_line(tmp_path):
    path = write(tmp_path, "sst-train.csv",
                 (SST_HEADER + "0\tx\tgood .\t3\n").encode() + b"1\ty\tbad \xff .\t1\n")
    with pytest.raises(DataFormatError, match=r"sst-train\.csv:3: undecodable bytes b'\\xff'"):
        read_task_file(path, "sst")


def test_empty_file_and_header_only_file_are_errors(tmp_path):
    with pytest.raises(DataFormatError, match=":1: empty file"):
        read_task_file(write(tmp_path, "a.csv", ""), "sst")
    with pytest.raises(DataFormatError, match=":2: no rows after the header"):
        read_task_file(write(tmp_path, "b.csv", SST_HEADER), "sst")


@pytest.mark.parametrize("row, reason", [
    ("100\tbad\tgood .\n", "expected 4 tab-separated columns, found 3"),
    ("100\tbad\t   \t3\n", "empty sentence"),
    ("100\t\tgood .\t3\n", "empty id"),
    ("100\tbad\tgood .\t\n", "missing sentiment"),
    ("100\tbad\tgood .\tpositive\n", "non-numeric sentiment 'positive'"),
    ("100\tbad\tgood .\tnan\n", "non-numeric sentiment 'nan'"),
    ("100\tbad\tgood .\t7\n", "sentiment '7' outside [0, 4]"),
    ("100\tbad\tgood .\t2.5\n", "sentiment '2.5' is not an integer class"),
    (f"100\tbad\t{'a' * (csv.field_size_limit() + 1)}\t3\n",
     f"unreadable row (field larger than field limit ({csv.field_size_limit()})); expected "
     "tab-separated fields with CSV quoting"),
])
def test_defective_row_is_skipped_with_one_warning_naming_it(tmp_path, row, reason):
    lines = [SST_HEADER, *GOOD_SST_LINES[:60], row, *GOOD_SST_LINES[60:]]
    path = write(tmp_path, "sst-train.csv", "".join(lines))
    with pytest.warns(DataWarning) as caught:
        data = read_task_file(path, "sst")
    assert len(caught) == 1
    assert [str(i) for i in data.issues] == [f"{path}:62: {reason}"]
    assert f"{path}:62: {reason}" in str(caught[0].message)
    assert len(data) == 100 and all(e.id != "bad" for e in data.examples)


def test_a_field_over_the_csv_limit_is_an_error_under_strict(tmp_path):
    big = "a" * (csv.field_size_limit() + 1)
    path = write(tmp_path, "sst-train.csv", SST_HEADER + f"0\tx\t{big}\t3\n" + GOOD_SST_ROWS)
    with pytest.raises(DataFormatError, match=r"sst-train\.csv:2: unreadable row \(field larger"):
        read_task_file(path, "sst", strict=True)


def test_repeated_ids_are_kept_and_warned_naming_both_lines(tmp_path):
    rows = GOOD_SST_LINES[:50] + ["50\tid7\tanother sentence .\t1\n"] + GOOD_SST_LINES[51:]
    path = write(tmp_path, "sst-dev.csv", SST_HEADER + "".join(rows))
    with pytest.warns(DataWarning, match="1 row\\(s\\) repeat an earlier row's id") as caught:
        data = read_task_file(path, "sst")
    assert len(data) == 100 and data.issues == []
    assert [str(d) for d in data.duplicates] == [f"{path}:52: duplicate id 'id7' (also {path}:9)"]
    assert f"{path}:52: duplicate id 'id7' (also {path}:9)" in str(caught[0].message)
    with pytest.raises(DataFormatError, match=f"{path}:52: duplicate id 'id7' \\(also {path}:9\\); "
                                              "ids must be unique"):
        read_task_file(path, "sst", strict=True)


def test_binary_label_must_be_zero_or_one(tmp_path):
    rows = "".join(f"{i}\tq{i}\ta ?\tb ?\t{i % 2}.0\n" for i in range(100))
    path = write(tmp_path, "quora-dev.csv", "\tid\tsentence1\tsentence2\tis_duplicate\n" + rows
                 + "100\tq\ta ?\tb ?\t0.5\n")
    with pytest.warns(DataWarning, match="is_duplicate '0.5' is not an integer class"):
        data = read_task_file(path, "quora")
    assert {e.label for e in data.examples} == {0.0, 1.0}


def test_strict_raises_on_the_first_defect(tmp_path):
    path = write(tmp_path, "sst-train.csv", SST_HEADER + GOOD_SST_ROWS + "100\tx\tgood .\t9\n")
    with pytest.raises(DataFormatError, match=r"sst-train\.csv:102: sentiment '9' outside"):
        read_task_file(path, "sst", strict=True)


def test_more_than_one_percent_defective_raises_without_strict(tmp_path):
    bad = "100\tx\tgood .\t9\n101\ty\tgood .\t\n"
    path = write(tmp_path, "sst-train.csv", SST_HEADER + GOOD_SST_ROWS + bad)
    with pytest.raises(DataFormatError, match="2 of 102 rows are defective, more than "
                                              "max_defect_fraction=0.01"):
        read_task_file(path, "sst")


def test_write_issues_writes_one_file_line_reason_per_line(tmp_path):
    issues = [DataIssue(Path("q.csv"), 4, "missing is_duplicate"), DataIssue(Path("s.csv"), 9, "x")]
    out = write_issues(issues, tmp_path / "run" / "data_issues.txt")
    assert out.read_text() == "q.csv:4: missing is_duplicate\ns.csv:9: x\n"


@needs_real
@pytest.mark.realdata
def test_real_files_load_with_the_readme_row_counts():
    counts = {("sst", "train"): 8000, ("sst", "dev"): 1101, ("quora", "train"): 14212,
              ("quora", "dev"): 3000, ("sts", "train"): 5500, ("sts", "dev"): 863,
              ("cfimdb", "train"): 1707, ("cfimdb", "dev"): 245}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        loaded = {key: load_task(REAL, *key) for key in counts}
    assert {key: len(data) for key, data in loaded.items()} == counts  # quora-train: 14,214 - 2
    quoted = next(e for e in loaded["quora", "train"].examples if e.line == 46)
    assert quoted.text_b.startswith('"[SPOILERS] Who is the ""Cursed Child""')


@needs_real
@pytest.mark.realdata
def test_real_quora_train_reports_exactly_its_two_known_defects():
    with pytest.warns(DataWarning) as caught:
        data = load_tasks(REAL, ("quora",))["quora"]
    path = REAL / "quora-train.csv"
    assert [str(i) for i in data.issues] == [
        f"{path}:9624: missing is_duplicate",
        f"{path}:13428: empty sentence2; missing is_duplicate",
    ]
    assert len(caught) == 1 and str(data.issues[1]) in str(caught[0].message)
