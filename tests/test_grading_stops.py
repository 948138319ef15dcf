"""A grading run stopped by Ctrl-C or SIGTERM stops now, and loses nothing.

An instructor presses Ctrl-C; a batch scheduler or `timeout` sends SIGTERM to the grader
alone. Either way the grader stops within seconds (it used to grade the rest of the class
first, or, on Ctrl-C, record the students in flight as "internal error"), kills what the
students in flight were running, removes their work folders, keeps every finished student's
result, writes no result for an unfinished one, and says how to go on (--resume).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grading import autograde, cgroups, sandbox, workspace
from grading.sandbox import Limits, run_sandboxed

try:
    from test_autograde_corpus import _student, fake_core  # noqa: F401
except ImportError:  # collected as a package (tests/__init__.py)
    from tests.test_autograde_corpus import _student, fake_core  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def _sandbox_refusal() -> str:
    try:
        sandbox.check_mode()
    except sandbox.SandboxRefused as err:
        return str(err)
    return ""


needs_sandbox = pytest.mark.skipif(bool(_sandbox_refusal()), reason=_sandbox_refusal())


def _alive_with(marker: str) -> list[int]:
    """Live processes whose command line holds marker (sandboxed ones included: /proc shows all)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(name))
    return found


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what}")
        time.sleep(0.05)
    return value


# ---------------------------------------------------------------- the sandbox

@needs_sandbox
@pytest.mark.parametrize("cgroups_on", [True, False], ids=["cgroups", "no-cgroups"])
@pytest.mark.parametrize("host", [None, sandbox.Host(namespaces=False)], ids=["auto", "no-namespaces"])
def test_an_interrupted_run_leaves_none_of_its_processes_alive(tmp_path, monkeypatch, host,
                                                               cgroups_on):
    if host is not None and not sandbox.can_drop_privileges(host):
        pytest.skip("without namespaces the sandbox needs root and setpriv")
    if not cgroups_on:  # a machine without usable control groups: nothing kills a run wholesale
        monkeypatch.setattr(cgroups.Group, "create", classmethod(lambda cls, *a: None))
    marker = f"stop-marker-{secrets.token_hex(4)}"
    code = textwrap.dedent("""
        import os, sys, time
        if os.fork() == 0:  # a daemon that leaves the process group
            os.setsid()
            time.sleep(120)
            os._exit(0)
        open("started", "w").close()
        time.sleep(120)
    """)
    work = tmp_path / "work"
    work.mkdir()

    def interrupt():  # the grader's Ctrl-C, arriving while the student's code runs
        if (work / "started").exists() and len(_alive_with(marker)) >= 2:
            raise KeyboardInterrupt
        return None

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_sandboxed([sys.executable, "-I", "-S", "-c", code, marker], workdir=work,
                      limits=Limits(cpu_s=120, wall_s=60), watchdog=interrupt, host=host)
    assert time.monotonic() - start < 30, "the run went on after the interrupt"
    assert not _alive_with(marker), "a process of the interrupted run is still alive"


# ---------------------------------------------------------------- the grader

GRADER = """
import sys, time
from pathlib import Path
sys.path[:0] = [{repo!r}, {tests!r}]
from grading import autograde, sandbox
from grading.sandbox import Limits
import test_autograde_corpus as corpus

MARKER = {marker!r}

def grade_module(student_dir, suite, *, workdir, limits=None, deadline=None):
    if "SLEEP" in (student_dir / "cs_layers" / "layers.py").read_text():  # a long student
        run = workdir / "run"
        run.mkdir()
        sandbox.run_sandboxed([sys.executable, "-I", "-S", "-c", "import time; time.sleep(120)",
                               MARKER], workdir=run, limits=Limits(cpu_s=120, wall_s=120))
    return corpus._fake_grade_module(student_dir, suite, workdir=workdir)

grader = autograde.Grader(
    task_points={{"task2_1": 10.0, "task2_9": 5.0}}, torch_tasks=(), build_suite=lambda seed: seed,
    grade_module=grade_module, grade_model=corpus._fake_grade_model,
    notebook_layout=lambda: list(corpus.FAKE_NB_LAYOUT),
    notebook_results=lambda staging, sid, **kw: [
        corpus.TaskResult(t, 0.0, m, "missing", "not in the submission")
        for t, m in corpus.FAKE_NB_LAYOUT])
sys.exit(autograde.main(sys.argv[1:], grader=grader))
"""


@needs_sandbox
@pytest.mark.parametrize("how, signum, whole_group, code", [
    ("SIGTERM to the grader alone", signal.SIGTERM, False, 143),
    ("Ctrl-C in its terminal", signal.SIGINT, True, 130),
], ids=["sigterm", "ctrl-c"])
def test_a_stopped_grader_stops_now_keeps_what_is_done_and_resumes(tmp_path, fake_core, how,
                                                                   signum, whole_group, code):
    subs, out = tmp_path / "subs", tmp_path / "out"
    _student(subs, "a0")  # graded at once
    for sid in ("b1", "b2", "b3", "b4"):  # each runs student code for two minutes
        _student(subs, sid, layers="SLEEP\n")
    marker = f"stop-marker-{secrets.token_hex(4)}"
    script = tmp_path / "grader.py"
    script.write_text(GRADER.format(repo=str(REPO), tests=str(REPO / "tests"), marker=marker))
    grader = subprocess.Popen([sys.executable, str(script), str(subs), "--out", str(out),
                               "--jobs", "2", "--quiet"], cwd=tmp_path, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (out / "results" / "a0.json").exists(), 60, "a0's result")
        _wait_for(lambda: len(_alive_with(marker)) >= 2, 60, "two students' code running")
        stopped_at = time.monotonic()
        if whole_group:  # the terminal signals the grader and its grading processes alike
            os.killpg(grader.pid, signum)
        else:
            grader.send_signal(signum)
        _, err = grader.communicate(timeout=60)
    finally:
        if grader.poll() is None:
            os.killpg(grader.pid, signal.SIGKILL)
            grader.wait()
    took = time.monotonic() - stopped_at

    assert grader.returncode == code, err
    assert took < 30, f"{how}: the grader took {took:.0f} s to stop"  # it used to grade everyone
    assert f"grading stopped by {'Ctrl-C' if signum == signal.SIGINT else 'SIGTERM'}" in err
    assert "1 of 5 students are graded" in err and "--resume" in err, err
    assert "Traceback" not in err, err
    assert sorted(p.name for p in (out / "results").iterdir()) == ["a0.json"], \
        "a student in flight got a result (a wrong grade that --resume would keep)"
    _wait_for(lambda: not _alive_with(marker), 10, "the stopped students' code to be gone")
    base = workspace.base_dir()
    assert not list(base.glob(f"run-{grader.pid}-*")), "the run folder (hidden inputs) was left"
    first = json.loads((out / "results" / "a0.json").read_text())

    # --resume grades the four others (the fake core has no sleeping students) and keeps a0
    assert autograde.main([str(subs), "--out", str(out), "--resume", "--quiet"], grader=fake_core) == 0
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    assert sorted(results) == ["a0", "b1", "b2", "b3", "b4"]
    assert results["a0"]["run_id"] == first["run_id"], "a0 was graded again"
    assert (out / "grades.csv").exists()


class _Exited(Exception):
    pass


@pytest.mark.parametrize("where", ["grading", "writing the record"])
@pytest.mark.parametrize("stop, code", [(KeyboardInterrupt(), 130), (workspace.Terminated(143), 143)],
                         ids=["ctrl-c", "sigterm"])
def test_a_stop_anywhere_in_a_grading_job_ends_that_grading_process(tmp_path, monkeypatch, where,
                                                                    stop, code):
    # Handed back to the pool as an exception, a stop would leave the process free to take
    # the next student; a library's sys.exit is a grader error, as before.
    def exit_(status):
        raise _Exited(status)

    def grade(sub, suite, **kw):
        if where == "grading":
            raise stop
        return [], ""

    def write(path, obj):
        raise stop
    monkeypatch.setattr(autograde.os, "_exit", exit_)
    monkeypatch.setattr(autograde, "grade_submission", grade)
    if where == "writing the record":
        monkeypatch.setattr(autograde, "write_json_atomic", write)
    results = tmp_path / "results"
    results.mkdir()
    sub = autograde.Submission("s1", tmp_path / "s1")
    with pytest.raises(_Exited) as exited:
        autograde._grade_job(sub, results, "seed", "run", None)
    assert exited.value.args == (code,)
    assert not list(results.iterdir())


def test_a_librarys_sys_exit_is_still_a_grader_error(tmp_path, monkeypatch, fake_core):
    def grade(sub, suite, **kw):
        raise SystemExit(3)
    monkeypatch.setattr(autograde, "grade_submission", grade)
    monkeypatch.setattr(autograde, "_GRADER", fake_core)
    results = tmp_path / "results"
    results.mkdir()
    record = autograde._grade_job(autograde.Submission("s1", tmp_path / "s1"), results, "seed", "run", None)
    assert {r["status"] for r in record["results"]} == {"error"}
    assert "internal error in grading (SystemExit)" in (results / "s1.json").read_text()
