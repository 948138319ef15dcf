"""Two grading runs at once on one machine (two instructors, two xdist workers, a --resume
beside a live run) never disturb each other.

What one run does to the machine when it starts (reap a killed grader's orphans, remove its
control groups and work folders) and while it grades (probe the backend, lease uids) must
leave the other run's processes, control groups and folders alone. Each race below once
broke a live run: a reaper removed the other run's control group in the moment between its
creation and its worker entering it (the worker then failed to start); the backend probe ran
as a fixed uid without a lease; a run's folder existed for a moment before its lock was held.
Tests that need root (a uid to drop to, control groups) skip elsewhere; CI runs as root.
"""
import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grading import cgroups, sandbox, workspace
from grading.sandbox import Limits, run_sandboxed

REPO = Path(__file__).resolve().parent.parent
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not (ROOT and sandbox.can_drop_privileges()),
                                reason="needs root and setpriv (a throw-away uid to drop to)")
needs_cgroups = pytest.mark.skipif(not cgroups.available()[0], reason="no usable control groups here")


@needs_root
@needs_cgroups
def test_a_starting_grader_leaves_a_live_runs_fresh_control_group_alone():
    with sandbox.uid_lease() as uid:  # a live run of another grader, about to start its worker
        group = cgroups.Group.create(sandbox._group_name(uid), 64 << 20, 8)
        assert group is not None
        try:
            sandbox.reap_orphans()  # what another grader does when it starts, right now
            assert all(d.is_dir() for d in group.dirs), "another run's empty control group was removed"
            worker = subprocess.Popen(["true"], preexec_fn=group.enter)  # its worker enters it
            assert worker.wait() == 0
        finally:
            group.close()


@needs_root
@needs_cgroups
def test_the_control_group_of_a_killed_grader_is_removed():
    with sandbox.uid_lease() as uid:
        group = cgroups.Group.create(sandbox._group_name(uid), 64 << 20, 8)
        assert group is not None
        name = group.dirs[0].name
        assert name in cgroups.group_names()
    # the lease is gone (the grader died) and its group was left behind, empty
    sandbox.reap_orphans()
    assert name not in cgroups.group_names() and not any(d.exists() for d in group.dirs)


@needs_root
def test_the_backend_probe_takes_a_uid_lease_like_any_run(monkeypatch):
    if sandbox.backend()[0] != "bwrap":
        pytest.skip("bubblewrap does not work here")
    draws = iter([0, 5])
    monkeypatch.setattr(sandbox.secrets, "randbelow", lambda n: next(draws))
    with sandbox.uid_lease() as held:  # another run grades as the pool's first uid
        assert held == sandbox._UID_BASE
        works, why = sandbox.probe_backend(sandbox.HOST, "bwrap")
    assert works, why
    assert next(draws, None) is None, "the probe ran as a uid without leasing it"


def test_a_run_folder_is_never_seen_without_its_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(workspace.tempfile, "gettempdir", lambda: str(tmp_path))
    real_flock, started = fcntl.flock, []

    def flock(fd, op):  # another grader starts just before this run takes its lock
        if not started:
            started.append(None)
            started[0] = workspace.remove_stale()
        return real_flock(fd, op)
    monkeypatch.setattr(workspace.fcntl, "flock", flock)
    with workspace.run_folder() as (path, _):
        assert started == [[]], "the other grader removed a folder"
        assert path.is_dir() and (path / ".lock").is_file()
        assert workspace.remove_stale() == []  # held: a live run
    assert not path.exists()


# A grader that starts again and again (reaper, stale folders, backend probe) and grades
# in the default sandbox, beside the runs of this test.
OTHER_GRADER = textwrap.dedent("""
    import sys, time
    from grading import autograde, sandbox, workspace
    from grading.sandbox import Limits, run_sandboxed
    end, runs = time.monotonic() + float(sys.argv[1]), 0
    while time.monotonic() < end:
        assert autograde.use_sandbox("auto") == ""
        sandbox.redetect()
        with workspace.run_folder() as (run, _):
            with workspace.student_folder("other") as work:
                res = run_sandboxed([sys.executable, "-I", "-S", "-B", "-c", "pass"], workdir=work,
                                    limits=Limits(wall_s=15, total_memory_mb=256))
                assert res.status == "ok", res.output_tail
        runs += 1
    print(runs)
""")


@needs_root
def test_two_grading_runs_at_once_do_not_disturb_each_other(tmp_path, monkeypatch):
    """A --sandbox none run grades while another grader keeps starting and grading."""
    monkeypatch.setenv(sandbox.MODE_ENV, "none")
    code = "open('out.txt', 'w').write(str(sum(range(10 ** 5))))"
    limits = Limits(cpu_s=10, wall_s=15, memory_mb=1024, nproc=16, total_memory_mb=256)
    (tmp_path / "alone").mkdir()
    alone = run_sandboxed([sys.executable, "-I", "-S", "-B", "-c", code], workdir=tmp_path / "alone",
                          limits=limits)
    if alone.status != "ok" and not sandbox.interpreter_reachable():
        pytest.skip("this Python sits below a folder the sandbox uid cannot enter")
    assert alone.status == "ok", alone.output_tail
    other = subprocess.Popen([sys.executable, "-c", OTHER_GRADER, "60"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for i in range(40):
            work = tmp_path / f"w{i}"
            work.mkdir()
            res = run_sandboxed([sys.executable, "-I", "-S", "-B", "-c", code], workdir=work,
                                limits=limits)
            assert res.status == "ok", f"run {i}: {res.status}: {res.output_tail}"
            assert (work / "out.txt").read_text() == str(sum(range(10 ** 5)))
            assert other.poll() is None, other.communicate()
    finally:
        other.kill()
        out, err = other.communicate()
    assert "Traceback" not in err, err


def test_removing_a_tree_that_cannot_go_leaves_its_shared_parent_open(tmp_path):
    # A stale run folder whose student tmpfs is still mounted: rmdir fails (EBUSY) for the
    # student folder, then for the run folder itself. The base above stays 0711, or every
    # other job's sandbox uid (no namespaces: --sandbox none) could no longer reach its
    # own folder in the middle of a run (the "worker died" of CI: PermissionError).
    base = tmp_path / "base"
    student = base / "run-1-000000000000" / "grade-s-x"
    student.mkdir(parents=True)
    os.chmod(base, 0o711)
    (student.parent / "plan.json").write_text("{}")
    with sandbox.bounded_folder(student, 4) as mounted:
        assert mounted, "this machine cannot mount the per-submission tmpfs"
        (student / "out.npy").write_bytes(b"x")
        workspace.rmtree(student.parent)
        assert student.is_dir() and not (student / "out.npy").exists()
        assert not (student.parent / "plan.json").exists()
        assert oct(os.stat(base).st_mode & 0o777) == oct(0o711)
    workspace.rmtree(student.parent)
    assert not student.parent.exists()
