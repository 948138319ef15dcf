"""One honest total, recovery and a readable report, fast.

Uses the fake grading core of test_autograde_corpus: no sandbox, no nbgrader.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grading import autograde, workspace
from grading.results import TaskResult

try:
    from test_autograde_corpus import FAKE_NB_LAYOUT, FAKE_TOTAL, _rows, _student, fake_core  # noqa: F401
except ImportError:  # collected as a package (tests/__init__.py)
    from tests.test_autograde_corpus import FAKE_NB_LAYOUT, FAKE_TOTAL, _rows, _student, fake_core  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def _class(tmp_path):
    subs = tmp_path / "subs"
    _student(subs, "alice")
    _student(subs, "bob", layers="WRONG\n", model=False)  # no checkpoint, no notebooks
    _student(subs, "carol", layers="BOOM\n")  # the grader fails on the module
    (subs / "frank.zip").write_bytes(b"not a zip")  # rejected at intake
    return subs


# ---------------------------------------------------------------- one honest total

def test_every_student_is_graded_out_of_the_same_total(tmp_path, fake_core, monkeypatch):
    monkeypatch.setattr(fake_core, "grade_model", lambda npz, data=None: TaskResult(
        "task2_9", 5.0 * 2 / 3, 5.0, "failed", "accuracy 0.7"))
    out = tmp_path / "out"
    assert autograde.main([str(_class(tmp_path)), "--out", str(out), "--quiet"], grader=fake_core) == 0
    per_student: dict[str, dict[str, str]] = {}
    for row in _rows(out):
        per_student.setdefault(row["student_id"], {})[row["task"]] = row["max_score"]
    layout = {t: autograde.fmt(m) for t, m in [("task2_1", 10.0), ("task2_9", 5.0), *FAKE_NB_LAYOUT]}
    for sid, maxes in per_student.items():
        assert maxes == layout, f"{sid} is graded on other rows or maxima: {maxes}"
        assert sum(float(m) for m in maxes.values()) == FAKE_TOTAL
    scores = {(r["student_id"], r["task"]): r["score"] for r in _rows(out)}
    assert scores[("alice", "task2_9")] == "3.33", "scores are rounded to two decimals"
    assert scores[("frank", "nb:task3_1")] == "0"  # a missing notebook costs its points


def test_scores_print_with_two_decimals_and_records_round_too():
    assert [autograde.fmt(x) for x in (49.142857, 74.0, 0.0, 2.5, 0.004)] == \
        ["49.14", "74", "0", "2.5", "0"]
    layout = [("task2_1", 4.0), ("nb:task3_1", 2.0)]
    got = autograde.conform([TaskResult("task2_1", 3.14159, 4.0, "failed", "m")], layout,
                            "missing", "absent")
    assert [(r.task, r.score, r.max_score, r.status) for r in got] == \
        [("task2_1", 3.14, 4.0, "failed"), ("nb:task3_1", 0.0, 2.0, "missing")]


def test_grade_table_fits_120_columns_with_total_first():
    layout = autograde.task_layout()  # the real course: every task, every notebook row
    records = {}
    for i, sid in enumerate(["a", "student-with-a-very-long-id-" + "x" * 30, "s042"]):
        results = [TaskResult(t, round(m * (i % 3) / 3, 2), m, "failed" if i else "passed", "")
                   for t, m in layout]
        records[sid] = {"results": results}
    table = autograde.grade_table(records)
    widest = max(len(line) for line in table.splitlines())
    assert widest <= 120, f"the table is {widest} columns wide:\n{table}"
    header = next(line for line in table.splitlines() if line.startswith("student"))
    assert header.split()[:2] == ["student", "total"]
    total = sum(m for _, m in layout)
    assert f"0/{autograde.fmt(total)}" in table
    assert "task2:" in table and "task3:" in table  # tasks grouped by part


def test_grader_errors_are_printed_above_the_progress_bar(tmp_path, fake_core, capfd):
    subs = tmp_path / "subs"
    _student(subs, "carol", layers="BOOM\n")
    out = tmp_path / "out"
    assert autograde.main([str(subs), "--out", str(out), "--jobs", "1"], grader=fake_core) == 0
    err = capfd.readouterr().err
    assert "grader error in module grading:\n" in err and "RuntimeError: grader bug" in err
    # written by the parent with tqdm.write: the traceback is whole lines, the bar on its own
    tb = err[err.index("grader error in module grading"):err.index("RuntimeError: grader bug")]
    assert "grading:" not in tb.split("\n", 1)[1], "the progress bar ran through the traceback"
    assert "grader_log" not in (out / "results" / "carol.json").read_text()


# ---------------------------------------------------------------- recovery

def test_resume_of_a_fully_graded_class_exits_0_and_keeps_grades_csv(tmp_path, fake_core, capsys):
    subs = _class(tmp_path)
    out = tmp_path / "out"
    assert autograde.main([str(subs), "--out", str(out), "--quiet"], grader=fake_core) == 0
    grades = out / "grades.csv"
    grades.write_text(grades.read_text() + "# an instructor's note\n")  # must survive
    before = (grades.read_bytes(), grades.stat().st_mtime_ns)
    capsys.readouterr()
    assert autograde.main([str(subs), "--out", str(out), "--resume", "--quiet"], grader=fake_core) == 0
    assert (grades.read_bytes(), grades.stat().st_mtime_ns) == before
    printed = capsys.readouterr().out
    assert "nothing to grade" in printed and "alice" in printed


def _plant_stale_run(base: Path) -> Path:
    """A run folder as a SIGKILLed grader leaves it: hidden inputs in read-only folders."""
    stale = base / "run-999999-0123456789ab"
    inputs = stale / "grade-alice-zz" / "work" / "inputs"
    inputs.mkdir(parents=True)
    (inputs / "x.npy").write_bytes(b"hidden")
    (stale / ".lock").write_text("")
    for d in (inputs, inputs.parent):
        os.chmod(inputs / "x.npy", 0o444)
        os.chmod(d, 0o555)
    return stale


def test_a_run_removes_work_folders_of_killed_runs_but_not_of_live_ones(tmp_path, fake_core,
                                                                        capsys, monkeypatch):
    # a base folder of this test's own (TMPDIR): graders running beside it (pytest -n, other
    # users of the machine) would clean up the planted stale run folder themselves
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(workspace.tempfile, "gettempdir", lambda: str(tmpdir))
    base = workspace.base_dir()
    # a live run (another grader on this machine) holds its lock: left alone
    live = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from grading import workspace
        with workspace.run_folder() as (path, _):
            print(path, flush=True)
            time.sleep(60)
    """)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        live_path = Path(live.stdout.readline().strip())
        stale = _plant_stale_run(base)
        subs = tmp_path / "subs"
        _student(subs, "alice")
        assert autograde.main([str(subs), "--out", str(tmp_path / "out"), "--quiet"], grader=fake_core) == 0
        assert not stale.exists(), "the killed run's hidden inputs are still on disk"
        assert f"removed {stale}" in capsys.readouterr().out
        assert live_path.is_dir(), "a live run's folder was removed"
        mine = [p for p in base.iterdir() if p != live_path and p.name.startswith("run-")]
        assert not mine, f"this run left its work folders: {mine}"
    finally:
        live.kill()
        live.wait()
    workspace.remove_stale()
    assert not live_path.exists()


def test_a_sigkilled_grader_leaves_nothing_after_the_next_run_starts(tmp_path):
    code = textwrap.dedent("""
        import time
        from grading import workspace
        with workspace.run_folder():
            with workspace.student_folder("alice") as d:
                (d / "inputs.npy").write_bytes(b"hidden")
                print(d, flush=True)
                time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    folder = Path(proc.stdout.readline().strip())
    assert (folder / "inputs.npy").is_file()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert folder.exists()  # SIGKILL: nothing could clean up
    with workspace.run_folder() as (_, stale):
        assert folder.parent in stale
    assert not folder.parent.exists()


def test_sigterm_cleans_up_on_exit(tmp_path):
    code = textwrap.dedent("""
        import sys, time
        from grading import workspace
        workspace.stop_on_signals()
        with workspace.run_folder():
            with workspace.student_folder("alice") as d:
                print(d, flush=True)
                time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    folder = Path(proc.stdout.readline().strip())
    proc.terminate()
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not folder.parent.exists()


def test_the_base_folder_must_be_ours(tmp_path, monkeypatch):
    monkeypatch.setattr(workspace.tempfile, "gettempdir", lambda: str(tmp_path))
    (tmp_path / f"{workspace.BASE_NAME}-{os.getuid()}").symlink_to(tmp_path)
    with pytest.raises(RuntimeError, match="not a folder owned by this user"):
        workspace.base_dir()


def test_library_warnings_and_logs_are_printed_by_the_parent(tmp_path, fake_core, monkeypatch,
                                                             capfd):
    import logging
    import warnings

    def noisy(npz, data=None):
        warnings.warn("a library complains", UserWarning)
        logging.getLogger("nbgrader").warning("nbgrader complains")
        return TaskResult("task2_9", 5.0, 5.0, "passed", "ok")
    monkeypatch.setattr(fake_core, "grade_model", noisy)
    subs = tmp_path / "subs"
    _student(subs, "alice")
    assert autograde.main([str(subs), "--out", str(tmp_path / "out"), "--jobs", "1"], grader=fake_core) == 0
    err = capfd.readouterr().err
    assert "warning while grading alice: UserWarning: a library complains\n" in err
    assert "warning while grading alice: nbgrader: nbgrader complains\n" in err


def test_a_tmpfs_left_mounted_by_a_killed_run_is_detached_and_removed():
    base = workspace.base_dir()
    stale = base / "run-999998-0123456789ab"
    work = stale / "grade-alice-zz"
    work.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "cs-layers-test",
                              str(work)], capture_output=True)
    if mounted.returncode != 0:
        workspace.rmtree(stale)
        pytest.skip("tmpfs cannot be mounted here (not root, or no mount privilege)")
    (work / "inputs.npy").write_bytes(b"hidden")
    assert str(work) in workspace.mounts_below(stale)
    assert stale in workspace.remove_stale()
    assert not stale.exists()
    assert str(work) not in Path("/proc/self/mountinfo").read_text()
