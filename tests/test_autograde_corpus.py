"""The autograde orchestration: fast checks with a fake grading core, then the hostile corpus.

The fast tests pass autograde.main a tiny fake grader so they exercise discovery,
the secret seed, parallel grading, atomic per-student results, --resume, grades.csv and the
feedback pages in a second. The `slow` tests run the real grader on tests/corpus.py.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grading import autograde
from grading.results import TaskResult

from session import seed_template, trained_models

try:
    from corpus import Context, build_corpus, cases, daemon_marker, expected_statuses, write_targets
except ImportError:  # collected as a package (tests/__init__.py)
    from tests.corpus import Context, build_corpus, cases, daemon_marker, expected_statuses, write_targets


# ---------------------------------------------------------------- fake grading core

def _fake_grade_module(student_dir, suite, *, workdir, limits=None, deadline=None):
    src = student_dir / "cs_layers" / "layers.py"
    if not src.is_file():
        return [TaskResult("task2_1", 0.0, 10.0, "missing", "cs_layers/layers.py is missing")]
    text = src.read_text()
    if "BOOM" in text:
        raise RuntimeError("grader bug")
    if "DIE" in text:
        os._exit(3)  # the grading process itself dies
    if "SLOW" in text:
        time.sleep(0.5)
    ok = "WRONG" not in text and suite == b"s" * 32
    return [TaskResult("task2_1", 10.0 if ok else 0.0, 10.0, "passed" if ok else "failed",
                       "ok" if ok else "relative error 1e-01 > 1e-07", 1e-7)]


def _fake_grade_model(npz_path, *, data=None):
    if npz_path is None:
        return TaskResult("task2_9", 0.0, 5.0, "missing", "convnet_model.npz is missing")
    return TaskResult("task2_9", 5.0, 5.0, "passed", "accuracy 0.95 >= 0.90")


@pytest.fixture
def fake_core():
    """A fake grader for autograde.main(..., grader=fake_core)."""
    # notebook grading (nbgrader, slow) has its own tests: here a notebook is only "missing"
    return autograde.Grader(
        task_points={"task2_1": 10.0, "task2_9": 5.0}, torch_tasks=(), build_suite=lambda seed: seed,
        grade_module=_fake_grade_module, grade_model=_fake_grade_model,
        notebook_layout=lambda: list(FAKE_NB_LAYOUT),
        notebook_results=lambda staging, sid, **kw: [
            TaskResult(t, 0.0, m, "missing", "not in the submission") for t, m in FAKE_NB_LAYOUT])


FAKE_NB_LAYOUT = [("nb:task2_1", 0.0), ("nb:task2_12:manual", 3.0), ("nb:task3_1", 2.0)]
FAKE_TOTAL = 10.0 + 5.0 + 3.0 + 2.0  # every student is graded out of this


def _student(root, sid, layers="x = 1\n", model=True):
    sub = root / sid
    (sub / "cs_layers").mkdir(parents=True)
    (sub / "cs_layers" / "layers.py").write_text(layers)
    if model:
        (sub / "assignments/convnets").mkdir(parents=True)
        (sub / "assignments/convnets/convnet_model.npz").write_bytes(b"npz")
    return sub


def _rows(out):
    with open(out / "grades.csv", newline="") as f:
        return list(csv.DictReader(f))


def _statuses(out):
    got: dict = {}
    for row in _rows(out):
        got.setdefault(row["student_id"], {})[row["task"]] = row["status"]
    return got


def test_class_is_graded_with_every_outcome(tmp_path, fake_core, capsys):
    subs = tmp_path / "subs"
    _student(subs, "alice")
    _student(subs, "bob", layers="WRONG\n", model=False)
    _student(subs, "carol", layers="BOOM\n")
    _student(subs, "dave", layers="DIE\n")
    zsrc = _student(tmp_path / "z", "erin")
    with zipfile.ZipFile(subs / "erin.zip", "w") as zf:
        for p in zsrc.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(zsrc).as_posix())
    (subs / "frank.zip").write_bytes(b"not a zip")
    _student(subs, "bad id")
    _student(subs, "gina")
    (subs / "gina.zip").write_bytes(b"PK")
    (subs / "notes.txt").write_text("hi")
    seed = tmp_path / "seed"
    seed.write_bytes(b"s" * 32)
    out = tmp_path / "out"

    assert autograde.main([str(subs), "--out", str(out), "--jobs", "2", "--seed-file", str(seed),
                           "--quiet"], grader=fake_core) == 0

    got = _statuses(out)
    nb_missing = {t: "missing" for t, _ in FAKE_NB_LAYOUT}
    assert got == {
        "alice": {"task2_1": "passed", "task2_9": "passed", **nb_missing},
        "bob": {"task2_1": "failed", "task2_9": "missing", **nb_missing},
        "carol": {"task2_1": "error", "task2_9": "passed", **nb_missing},
        "dave": {t: "error" for t in ["task2_1", "task2_9", *nb_missing]},
        "erin": {"task2_1": "passed", "task2_9": "passed", **nb_missing},
        "frank": {t: "rejected" for t in ["task2_1", "task2_9", *nb_missing]},
        "gina": {t: "rejected" for t in ["task2_1", "task2_9", *nb_missing]},
    }
    rows = _rows(out)
    assert list(rows[0]) == ["student_id", "task", "score", "max_score", "status"]
    crashed = [r for r in rows if r["status"] not in ("passed", "failed")]
    assert all(r["status"] in ("error", "missing", "rejected") for r in crashed)
    printed = capsys.readouterr()
    assert "skipped 'bad id'" in printed.out and "skipped notes.txt" in printed.out
    assert "alice" in printed.out and "legend" in printed.out
    assert "internal error in module grading" in (out / "results" / "carol.json").read_text()
    for sid in got:
        page = (out / "feedback" / f"{sid}.html").read_text()
        assert sid in page
    assert "corrupt" in (out / "feedback" / "frank.html").read_text()
    assert "died twice" in (out / "results" / "dave.json").read_text()
    assert stat.S_IMODE(os.stat(out / ".secret_seed").st_mode) == 0o600
    assert not list((out / "results").glob(".*.tmp")), "a temporary result file was left behind"


def test_resume_keeps_finished_students_and_grades_the_rest(tmp_path, fake_core):
    subs = tmp_path / "subs"
    for sid in ("s1", "s2", "s3"):
        _student(subs, sid)
    out = tmp_path / "out"
    (out / "results").mkdir(parents=True)
    assert autograde.main([str(subs), "--out", str(out), "--jobs", "1", "--quiet"], grader=fake_core) == 0
    first = {p.name: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    # s3 "was killed mid-write": its record is partial; s4 is new.
    (out / "results" / "s3.json").write_text('{"complete": tru')
    _student(subs, "s4")

    with pytest.raises(SystemExit):  # without --resume, existing results are never overwritten
        autograde.main([str(subs), "--out", str(out), "--quiet"], grader=fake_core)
    assert autograde.main([str(subs), "--out", str(out), "--resume", "--quiet"], grader=fake_core) == 0

    after = {p.name: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    assert set(after) == {"s1.json", "s2.json", "s3.json", "s4.json"}
    for name in ("s1.json", "s2.json"):
        assert after[name]["run_id"] == first[name]["run_id"], f"{name} was regraded"
    assert after["s3.json"]["run_id"] != first["s1.json"]["run_id"]
    assert after["s3.json"]["seed_id"] == first["s1.json"]["seed_id"], "resume changed the seed"
    assert len(_statuses(out)) == 4


def test_resume_refuses_a_different_seed(tmp_path, fake_core, capsys):
    subs = tmp_path / "subs"
    _student(subs, "s1")
    out = tmp_path / "out"
    assert autograde.main([str(subs), "--out", str(out), "--quiet"], grader=fake_core) == 0
    other = tmp_path / "seed"
    other.write_bytes(os.urandom(32))
    with pytest.raises(SystemExit) as exit_:
        autograde.main([str(subs), "--out", str(out), "--resume", "--seed-file", str(other)], grader=fake_core)
    assert exit_.value.code == 2 and "--seed-file differs" in capsys.readouterr().err


def test_student_ids_must_be_safe_names(tmp_path):
    for bad in ("..", ".hidden", "a b", "a/b", "ä", "x" * 65, "-rf"):
        assert not autograde.STUDENT_ID.match(bad), bad
    for good in ("s001", "jane.doe", "A-1_b"):
        assert autograde.STUDENT_ID.match(good), good


# ---------------------------------------------------------------- the hostile corpus (slow)

REPO = Path(__file__).resolve().parent.parent
CASE_NAMES = [c.name for c in cases()]


def _layers(mode="auto"):
    """The layers `python -m grading autograde --sandbox MODE` will have on this machine."""
    from grading import sandbox
    old = os.environ.get(sandbox.MODE_ENV)
    sandbox.set_mode(mode)
    try:
        return sandbox.detect_layers()
    finally:
        if old is None:
            os.environ.pop(sandbox.MODE_ENV, None)
        else:
            os.environ[sandbox.MODE_ENV] = old


def _can_drop():
    from grading import sandbox
    return sandbox.can_drop_privileges()


# The corpus is graded under the default backend (bwrap where it works) and under
# --sandbox none (a throw-away uid, rlimits, cgroup and tmpfs, no namespaces): every case
# must get the same exact statuses under both.
MODES = ["auto", pytest.param("none", marks=pytest.mark.skipif(
    not _can_drop(), reason="--sandbox none needs root (a throw-away uid to drop to)"))]


def _autograde(subs, out, *extra, timeout=900):
    return subprocess.run([sys.executable, "-m", "grading", "autograde", str(subs), "--out",
                           str(out), "--quiet", *extra], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module", params=MODES)
def corpus_run(request, tmp_path_factory):
    """Build the whole corpus and grade it once with --jobs 2 (per --sandbox mode)."""
    mode = request.param
    root = tmp_path_factory.mktemp(f"corpus-{mode}")
    models = trained_models(tmp_path_factory)  # trained once for both modes
    ctx = Context(submissions=root / "submissions", out=root / "out", model=models.model,
                  challenge=models.challenge)
    layers = _layers(mode)
    runnable = [c for c in cases(ctx) if all(layers[n][0] for n in c.needs)]
    build_corpus(ctx.submissions, ctx, runnable)
    seed_template(tmp_path_factory, ctx.out)
    start = time.monotonic()
    proc = _autograde(ctx.submissions, ctx.out, "--jobs", "2", "--sandbox", mode)
    took = time.monotonic() - start
    print(f"corpus of {len(runnable)} submissions graded with --sandbox {mode} in {took:.1f} s")
    records = {p.stem: json.loads(p.read_text()) for p in (ctx.out / "results").glob("*.json")}
    return types.SimpleNamespace(ctx=ctx, proc=proc, records=records, layers=layers, mode=mode,
                                 runnable={c.name: c for c in runnable}, took=took)


@pytest.mark.slow
def test_corpus_run_completes_and_reports_the_sandbox(corpus_run):
    proc = corpus_run.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "sandbox layers:" in proc.stdout
    assert set(corpus_run.records) == set(corpus_run.runnable), "a student was lost"
    assert len(CASE_NAMES) >= 22  # >= 20 hostile + correct + partly wrong


def _kernel_can_start_without_namespaces():
    from grading import sandbox
    return sandbox.interpreter_reachable()


@pytest.mark.slow
@pytest.mark.parametrize("name", CASE_NAMES)
def test_corpus_case_gets_its_exact_statuses(corpus_run, name):
    case = corpus_run.runnable.get(name)
    if case is None:
        missing = [n for n in cases()[CASE_NAMES.index(name)].needs
                   if not corpus_run.layers[n][0]]
        pytest.skip(f"sandbox layers {missing} are not active on this machine; the case "
                    "would not be contained")
    from grading.hidden_tests import TASK_POINTS
    tasks = list(TASK_POINTS)
    got = {r["task"]: r["status"] for r in corpus_run.records[name]["results"] if r["task"] in tasks}
    want = expected_statuses(case, tasks)
    false_pass = sorted(t for t in tasks if got.get(t) == "passed" and want[t] != "passed")
    assert not false_pass, f"{name} ({case.why}): FALSE PASS on {false_pass}"
    assert got == want, (f"{name} ({case.why}): statuses differ\n"
                         + "\n".join(f"  {t}: got {got.get(t)}, want {want[t]}"
                                     for t in tasks if got.get(t) != want[t]))
    if case.notebook == "passed" and corpus_run.mode == "none" and not _kernel_can_start_without_namespaces():
        return  # the grader warned: its Python sits below a folder the sandbox uid cannot enter
    if case.notebook is not None:
        nb = [r for r in corpus_run.records[name]["results"] if r["task"].startswith("nb:")]
        assert nb and any(r["status"] == case.notebook for r in nb), nb


@pytest.mark.slow
def test_correct_submission_gets_full_marks(corpus_run):
    results = [r for r in corpus_run.records["correct"]["results"] if not r["task"].startswith("nb:")]
    assert results and all(r["score"] == r["max_score"] > 0 for r in results), results


@pytest.mark.slow
def test_pytorch_notebook_attacks_score_exactly_what_a_stub_scores(corpus_run):
    def task3(name):
        rows = [r for r in corpus_run.records[name]["results"]
                if r["task"].startswith(("task3_", "nb:task3_")) and not r["task"].endswith(":manual")]
        assert all(r["max_score"] == 0 for r in rows if r["task"].startswith("nb:")), rows
        return {r["task"]: r["score"] for r in rows if r["task"].startswith("task3_")}, \
            sum(r["score"] for r in rows)
    stub = task3("torch_stub")
    assert stub[1] == 0 and set(stub[0]) == {"task3_1", "task3_2", "task3_3", "task3_4", "task3_5"}
    for name in ("torch_notebook_attacks", "torch_edited_grade_cell"):
        if name in corpus_run.runnable:
            assert task3(name) == stub, f"{name} scored differently from a stub on the PyTorch tasks"


@pytest.mark.slow
def test_crashes_are_never_a_plain_zero(corpus_run):
    with open(corpus_run.ctx.out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_student = {}
    for row in rows:
        by_student.setdefault(row["student_id"], {})[row["task"]] = row["status"]
    assert by_student["os_exit"]["task2_3"] == "error"
    assert by_student["infinite_loop"]["task2_4"] == "timeout"
    assert all(r["status"] in ("passed", "failed", "error", "timeout", "memory", "missing",
                               "rejected", "pending") for r in rows)
    assert all(r["task"].endswith(":manual") for r in rows if r["status"] == "pending")


@pytest.mark.slow
def test_attacks_left_no_trace_on_the_host(corpus_run):
    leftovers = [p for p in write_targets(corpus_run.ctx) if p.exists()]
    assert not leftovers, f"student code wrote outside its working folder: {leftovers}"
    assert not (corpus_run.ctx.submissions.parent / "evil_zip_slip.py").exists()
    assert not (corpus_run.ctx.out.parent / "evil_zip_slip.py").exists()
    correct = corpus_run.ctx.out / "results" / "correct.json"
    assert "student was here" not in correct.read_text()


@pytest.mark.slow
def test_no_student_process_outlives_the_run(corpus_run):
    """The daemon case's double-forked process (and every other) is gone when grading ends."""
    marker = daemon_marker(corpus_run.ctx).encode()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker in f.read():
                    left.append(pid)
        except OSError:
            pass
    assert not left, f"processes of the graded class survived the run: {left}"
    daemon = corpus_run.ctx.out / "results" / "daemon.json"
    if "daemon" in corpus_run.runnable:
        assert json.loads(daemon.read_text())["complete"] is True, "the daemon rewrote its result"


@pytest.mark.slow
def test_keep_alive_does_not_keep_the_run_alive(corpus_run):
    """Touching .start files does not feed the watchdog: one case wall (5 s), not the run's 30 s."""
    took = corpus_run.records["keep_alive"]["duration_s"]
    assert took < 25, f"keep_alive took {took:.1f} s: the watchdog trusted the student's files"


@pytest.mark.slow
def test_feedback_shows_no_hidden_values(corpus_run):
    from grading.hidden_tests import build_suite

    seed = bytes.fromhex((corpus_run.ctx.out / ".secret_seed").read_text().strip())
    suite = build_suite(seed)
    page = (corpus_run.ctx.out / "feedback" / "partly_wrong.html").read_text()
    assert "failed" in page
    leaked = []
    for case in suite.cases:
        if case.task not in ("task2_3", "task2_11"):
            continue
        for arr in list(case.expected.values()) + list(getattr(case, "inputs", {}).values()):
            flat = np.asarray(arr, dtype=np.float64).ravel()[:50]
            # a value that rounds to a short string ("3") proves nothing: look for 4+ significant digits
            shown = [(v, f"{v:.5g}") for v in flat if abs(v) > 1e-3]
            leaked += [v for v, s in shown if sum(ch.isdigit() for ch in s.split("e")[0]) >= 4 and s in page]
    assert not leaked, f"hidden values appear in the feedback: {leaked[:5]}"


@pytest.mark.slow
def test_killed_run_resumes_without_regrading_or_losing_anyone(tmp_path, tmp_path_factory):
    from grading.examples import copy_reference

    subs, out = tmp_path / "subs", tmp_path / "out"
    seed_template(tmp_path_factory, out)
    ids = [f"s{i:02d}" for i in range(6)]
    for sid in ids:
        copy_reference(subs / sid)
    proc = subprocess.Popen([sys.executable, "-m", "grading", "autograde", str(subs), "--out",
                             str(out), "--jobs", "1", "--quiet"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    done = []
    while time.monotonic() < deadline and proc.poll() is None:
        done = sorted((out / "results").glob("*.json")) if (out / "results").is_dir() else []
        if len(done) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; add submissions"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    from grading import workspace
    left = [p for p in workspace.base_dir().glob(f"run-{proc.pid}-*")]
    assert left, "the killed run left no work folder: this test no longer tests the cleanup"
    before = {p.stem: (p.stat().st_mtime_ns, json.loads(p.read_text())["run_id"])
              for p in (out / "results").glob("*.json")}
    assert 2 <= len(before) < len(ids)

    res = _autograde(subs, out, "--resume", "--jobs", "2")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert f"resume: {len(before)} student(s) already graded" in res.stdout
    after = {p.stem: (p.stat().st_mtime_ns, json.loads(p.read_text())["run_id"])
             for p in (out / "results").glob("*.json")}
    assert set(after) == set(ids), "a student was lost"
    for sid, stamp in before.items():
        assert after[sid] == stamp, f"{sid} was regraded after --resume"
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["student_id"] for r in rows} == set(ids)
    assert not any(p.exists() for p in left), "the killed run's hidden inputs are still on disk"
    grades = (out / "grades.csv").read_bytes()
    res = _autograde(subs, out, "--resume")  # fully graded: nothing to do, nothing changed
    assert res.returncode == 0 and "nothing to grade" in res.stdout, res.stdout + res.stderr
    assert (out / "grades.csv").read_bytes() == grades
