"""The run's records: StepRecord and EvalRecord, their one writer and reader, and the one
conflict fraction; logs written before records were typed read the same."""

import json
from pathlib import Path

import pytest

from mtl_tutor.run_log import (
    EvalRecord,
    RunLog,
    StepRecord,
    changed_steps,
    conflict_fraction,
    conflict_steps,
    read_evals,
    read_steps,
)

FIXTURES = Path(__file__).parent / "fixtures" / "runs_before_typed_options"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("run", ["gradvac", "sum"])
def test_logs_written_before_records_were_typed_read_and_write_back_unchanged(run):
    steps, evals = read_steps(FIXTURES / run), read_evals(FIXTURES / run)
    assert [s.to_dict() for s in steps] == lines(FIXTURES / run / "log.jsonl")
    assert [e.to_dict() for e in evals] == lines(FIXTURES / run / "eval.jsonl")
    assert all(s.has_pairs for s in steps) == (run == "gradvac")


def test_the_conflict_fraction_of_a_logged_run_counts_its_conflict_flags():
    raw = lines(FIXTURES / "gradvac" / "log.jsonl")
    expected = sum(r["conflict"] for r in raw) / len(raw)
    assert conflict_fraction(read_steps(FIXTURES / "gradvac")) == expected
    assert conflict_fraction(raw) == expected  # the dictionaries of the raw lines read alike
    assert conflict_fraction(read_steps(FIXTURES / "sum")) is None


def record(step, cosines, changed=0.0, epoch=0):
    return StepRecord.from_statistics(step, epoch, 1e-5, {"a": 1.0, "b": 2.0, "c": 3.0},
                                      0.5 * step, {"cosines": cosines, "changed": changed})


def test_conflicts_per_pair_whatever_the_task_order_of_the_step():
    records = [record(0, {"a/b": -0.1, "a/c": 0.2}), record(1, {"b/a": -0.3, "c/a": -0.2}),
               record(2, {"a/b": 0.4, "a/c": 0.1}), record(3, {"b/c": 0.5})]
    assert conflict_steps(records) == (2, 4)
    assert conflict_steps(records, "a/b") == (2, 3)  # "b/a" is the same pair
    assert conflict_steps(records, "c/a") == (1, 3)
    assert conflict_fraction(records, "b/c") == 0.0
    assert records[1].cosine("a/b") == -0.3 and records[3].cosine("a/b") is None


def test_changed_steps_count_the_steps_the_combiner_moved():
    records = [record(0, {"a/b": 0.1}, 0.3), record(1, {"a/b": 0.1}, 0.0),
               record(2, {"a/b": 0.1}, 0.011)]
    assert changed_steps(records, 0.01) == (2, 3)


def test_unknown_statistics_are_kept_and_weights_are_a_field(tmp_path):
    statistics = {"grad_norms": {"a": 1.0, "b": 2.0}, "cosines": {"a/b": -0.5},
                  "conflict": True, "changed": 0.25, "weights": {"a": 0.4, "b": 0.6},
                  "gradvac_interventions": {"a/b": 1}}
    step = StepRecord.from_statistics(7, 1, 2e-5, {"a": 0.9, "b": 1.1}, 3.5, statistics)
    assert step.weights == {"a": 0.4, "b": 0.6} and step.conflict
    assert step.other == {"gradvac_interventions": {"a/b": 1}}
    log = RunLog(tmp_path)
    log.write_step(step)
    log.write_eval(EvalRecord(8, 2, {"sst_acc": 0.5, "overall": 0.6}))
    log.close()
    assert read_steps(tmp_path) == [step]
    assert lines(tmp_path / "log.jsonl") == [{"step": 7, "epoch": 1, "lr": 2e-5,
                                              "losses": {"a": 0.9, "b": 1.1}, **statistics,
                                              "time": 3.5}]
    assert read_evals(tmp_path) == [EvalRecord(8, 2, {"sst_acc": 0.5, "overall": 0.6})]


def test_a_resumed_log_drops_the_records_it_will_write_again(tmp_path):
    log = RunLog(tmp_path)
    for step in range(5):
        log.write_step(record(step, {"a/b": 0.1}))
        if step % 2:
            log.write_eval(EvalRecord(step + 1, 1, {"overall": 0.1 * step}))
    log.close()
    resumed = RunLog(tmp_path, resume_after=3)  # the checkpoint after 3 steps
    resumed.write_step(record(3, {"a/b": 0.2}))
    resumed.close()
    assert [(r.step, r.cosines["a/b"]) for r in read_steps(tmp_path)] == [
        (0, 0.1), (1, 0.1), (2, 0.1), (3, 0.2)]
    assert [e.step for e in read_evals(tmp_path)] == [2]


def test_a_damaged_line_names_the_file_and_the_line(tmp_path):
    (tmp_path / "log.jsonl").write_text(json.dumps(record(0, {}).to_dict()) + "\n{\"step\": 1}\n")
    with pytest.raises(ValueError, match=r"log.jsonl:2: not a record of this log"):
        read_steps(tmp_path)
