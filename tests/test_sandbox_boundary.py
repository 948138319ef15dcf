"""The grader's boundary with the sandbox: safe reads, uid leases, --sandbox modes, deadlines.

Each test names the attack it stands for. Tests that need root (a uid to drop to) skip
with the reason elsewhere; CI runs as root.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from grading import hidden_tests, safeio, sandbox
from grading.hidden_tests import runner, verdicts
from grading.sandbox import Limits, run_sandboxed

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not (ROOT and sandbox.can_drop_privileges()),
                                reason="needs root and setpriv (a throw-away uid to drop to)")
FAST = Limits(cpu_s=10, wall_s=15, memory_mb=1024, nproc=16, fsize_mb=16, output_kb=8)


@pytest.fixture
def mode(monkeypatch):
    """Switch the sandbox mode for one test (restored afterwards)."""
    def use(m):
        monkeypatch.setenv(sandbox.MODE_ENV, m)
    yield use
    os.environ.pop(sandbox.MODE_ENV, None)  # set_mode (autograde.main) writes it directly


# ---------------------------------------------------------------- safeio

def test_safeio_never_blocks_on_special_files(tmp_path):
    fifo = tmp_path / "status.json"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(safeio.Unsafe, match="named pipe"):
        safeio.read_bounded(fifo, 100)
    assert time.monotonic() - start < 1
    sock_path = tmp_path / "s.json"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    with pytest.raises(safeio.Unsafe, match="not a regular file"):
        safeio.read_bounded(sock_path, 100)
    s.close()
    link = tmp_path / "link.json"
    link.symlink_to("/etc/hostname")
    with pytest.raises(safeio.Unsafe, match="not a regular file"):
        safeio.read_bounded(link, 100)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(safeio.Unsafe):
        safeio.read_bounded(tmp_path / "dir.json", 100)
    if ROOT:
        dev = tmp_path / "zero.json"
        os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 5))  # /dev/zero: endless reads
        with pytest.raises(safeio.Unsafe, match="character device"):
            safeio.read_bounded(dev, 100)


def test_safeio_sizes_before_contents_and_depth(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 10_000)
    with pytest.raises(safeio.Unsafe, match="more than"):
        safeio.read_bounded(big, 8192)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # json.loads would raise RecursionError
    with pytest.raises(safeio.Unsafe, match="nested"):
        safeio.load_json(deep, 1 << 20)
    tricky = tmp_path / "str.json"
    tricky.write_text(json.dumps({"kind": "ok", "message": "[[[[" * 50 + '\\"'}))
    assert safeio.load_json(tricky, 1 << 20)["kind"] == "ok"  # brackets inside strings
    with pytest.raises(safeio.Unsafe, match="UTF-8"):
        safeio.loads_json(b"\xff\xfe", "x")


@pytest.mark.parametrize("content", [
    "[" * 50_000 + "]" * 50_000,               # deep nesting
    '{"kind": ' + "[" * 5000 + "]" * 5000 + "}",
    "[1, 2, 3]",                                # wrong type
    '{"kind": 7}',                              # wrong field type
    '{"kind": "ok", "message": {"a": 1}}',      # odd message: kept out
    "\x00\x01garbage",
    "x" * 100_000,                              # huge
])
def test_malformed_status_blames_the_submission(tmp_path, content):
    path = tmp_path / "c001.json"
    path.write_text(content)
    st = verdicts.read_status(path)
    if st["kind"] == "ok":
        assert st["message"] == ""
        return
    assert st["kind"] == "error"
    assert "internal" not in st["message"] and ("status" in st["message"])


def test_status_fifo_is_an_error_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "c001.json")
    start = time.monotonic()
    st = verdicts.read_status(tmp_path / "c001.json")
    assert time.monotonic() - start < 1
    assert st["kind"] == "error" and "named pipe" in st["message"]
    assert verdicts.read_status(tmp_path / "absent.json") is None


def test_copy_bounded_refuses_links_and_fifos(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(safeio.Unsafe):
        safeio.copy_bounded(tmp_path / "fifo", tmp_path / "a", 100)
    (tmp_path / "f").write_bytes(b"x" * 50)
    safeio.copy_bounded(tmp_path / "f", tmp_path / "b", 100)
    assert (tmp_path / "b").read_bytes() == b"x" * 50
    assert oct((tmp_path / "b").stat().st_mode & 0o777) == oct(0o600)


# ---------------------------------------------------------------- watchdog (keep-alive)

def test_watchdog_ignores_touched_start_files(tmp_path):
    """A student who keeps touching c001.start (or adds new names) cannot keep a run alive."""
    status = tmp_path / "status"
    status.mkdir()
    check = runner.watchdog(status, 0.3, items={"c001", "c002"})
    (status / "c001.start").touch()
    assert check() is None
    end = time.monotonic() + 3
    fired = None
    while time.monotonic() < end and fired is None:
        os.utime(status / "c001.start")  # keep-alive attempt: fresh mtime every loop
        (status / f"bogus{time.monotonic_ns()}.start").touch()  # names not in the plan
        fired = check()
        time.sleep(0.02)
    assert fired is not None, "the watchdog trusted a file the sandbox user can change"


# ---------------------------------------------------------------- modes and uids

def test_mode_refuses_without_a_uid_to_drop_to(mode, tmp_path):
    mode("none")
    not_root = sandbox.Host(root=False)  # a grader that cannot hand student code another uid
    with pytest.raises(sandbox.SandboxRefused, match="refusing to run student code"):
        sandbox.check_mode(not_root)
    with pytest.raises(sandbox.SandboxRefused):
        run_sandboxed([sys.executable, "-c", "open('ran', 'w')"], workdir=tmp_path, limits=FAST,
                      host=not_root)
    assert not (tmp_path / "ran").exists()
    mode("unsafe")
    assert sandbox.check_mode(not_root) == "unsafe"


def test_mode_names_the_missing_backend(mode):
    mode("bwrap")
    broken = sandbox.Host(probe=lambda host, backend, userns: (False, "bwrap probe failed (test)"))
    with pytest.raises(sandbox.SandboxRefused, match="--sandbox bwrap does not work"):
        sandbox.check_mode(broken)


def test_autograde_refuses_and_says_why(mode, monkeypatch, tmp_path, capsys):
    from grading import autograde

    monkeypatch.setattr(sandbox, "HOST", sandbox.Host(root=False))  # the autograder's machine
    (tmp_path / "subs").mkdir()
    rc = autograde.main([str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--sandbox",
                         "none", "--quiet"])
    assert rc == 1  # a failure the user must fix (another sandbox, or root), not a usage error
    assert "refusing to run student code" in capsys.readouterr().err


@needs_root
def test_uid_leases_are_never_shared(monkeypatch):
    draws = iter([5, 5, 5, 9])
    monkeypatch.setattr(sandbox.secrets, "randbelow", lambda n: next(draws))
    with sandbox.uid_lease() as a:
        with sandbox.uid_lease() as b:  # same process, same draw: the flock says no
            assert a != b
        code = textwrap.dedent("""
            from grading import sandbox
            draws = iter([5, 5, 11])
            sandbox.secrets.randbelow = lambda n: next(draws)
            with sandbox.uid_lease() as u:
                print(u)
        """)
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True)
        assert int(other.stdout) == sandbox._UID_BASE + 11 != a  # another grader process


@needs_root
def test_none_mode_drops_uid_reaches_a_0700_parent_and_kills_daemons(mode, tmp_path):
    """--sandbox none: a throw-away uid, a work folder below a 0700 temp folder, no leftovers."""
    mode("none")
    parent = tmp_path / "private"
    parent.mkdir(mode=0o700)
    work = parent / "work"
    work.mkdir()
    secret = tmp_path / "reference.py"
    secret.write_text("SOLUTION")
    secret.chmod(0o600)
    stray = Path("/tmp") / f"cs-layers-test-stray-{os.getpid()}"
    code = textwrap.dedent(f"""
        import os, time
        uid = os.getuid()
        try:
            open({str(secret)!r}).read(); got = "READ"
        except OSError:
            got = "denied"
        open("made.txt", "w").write(f"{{uid}} {{got}}")
        open({str(stray)!r}, "w").write("litter")
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(120)  # a daemon that would outlive the run
            os._exit(0)
    """)
    res = run_sandboxed([sys.executable, "-I", "-S", "-B", "-c", code], workdir=work,
                        limits=FAST, writable=("",))
    assert res.status == "ok", res.output_tail
    uid, got = (work / "made.txt").read_text().split()
    assert int(uid) >= sandbox._UID_BASE and got == "denied"
    assert res.uid == int(uid)
    assert not sandbox.uid_processes(res.uid), "a daemon outlived the run"
    assert not stray.exists(), "a file the student left in /tmp was not removed"
    assert os.stat(parent).st_mode & 0o777 == 0o701  # traversable, not listable


@needs_root
def test_none_mode_closes_the_secrets(mode, tmp_path):
    from grading import autograde

    out, subs = tmp_path / "out", tmp_path / "subs"
    out.mkdir()
    subs.mkdir(mode=0o755)
    assert autograde.use_sandbox("none", protect=[out, subs]) == ""
    assert not os.stat(subs).st_mode & 0o007 and not os.stat(out).st_mode & 0o007
    repo = Path(autograde.__file__).resolve().parent.parent
    assert not os.stat(repo / "cs_layers").st_mode & 0o007
    assert not os.stat(repo / "grading").st_mode & 0o007


# ---------------------------------------------------------------- deadline and checkpoint

def test_deadline_turns_unfinished_cases_into_timeouts(tmp_path):
    from grading.examples import append_patch, copy_reference, wrap

    sub = copy_reference(tmp_path / "sub")
    append_patch(sub, "layers.py", wrap("max_pool_backward_naive", """
        import time
        time.sleep(60)
    """))
    suite = hidden_tests.build_suite(b"d" * 32, tasks=["task2_1", "task2_4"])
    start = time.monotonic()
    res = hidden_tests.grade_module(sub, suite, workdir=tmp_path / "work",
                                    deadline=time.monotonic() + 4, case_wall_s=30)
    took = time.monotonic() - start
    by = {r.task: r for r in res}
    assert by["task2_4"].status == "timeout"
    assert took < 15, f"the deadline was not enforced ({took:.1f} s)"
    assert by["task2_1"].status == "passed"


def test_oversized_checkpoint_is_rejected_before_evaluation(tmp_path):
    from cs_layers.cnn import ThreeLayerConvNet, save_model

    model = ThreeLayerConvNet(input_dim=(3, 32, 32), num_filters=256, filter_size=9,
                              hidden_dim=10, dtype=np.float32)
    path = tmp_path / "m.npz"
    save_model(path, model, dataset="digits")
    start = time.monotonic()
    res = hidden_tests.grade_model(path)
    assert res.status == "rejected" and "multiply-adds" in res.message, res
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------- every backend, every CI run

BACKENDS = ["bwrap", "unshare", "none"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_contains_a_run(mode, tmp_path, backend):
    """The same hostile run under each backend: outside writes fail, no process or litter left.

    .ci/run installs bubblewrap, so on CI (CI=true, root) no backend may be skipped.
    """
    mode(backend)
    try:
        chosen = sandbox.check_mode()
    except sandbox.SandboxRefused as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test --sandbox {backend}: {err}")
        pytest.skip(str(err))
    assert chosen == backend
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside.txt"
    marker = f"cs-layers-backend-test-{os.getpid()}-{backend}"
    code = textwrap.dedent(f"""
        import os, sys, time
        try:
            open({str(outside)!r}, "w").write("x"); wrote = "WROTE"
        except OSError:
            wrote = "denied"
        open("report.txt", "w").write(wrote + " " + str(os.getuid()))
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)",
                                          {marker!r}])
            os._exit(0)
        time.sleep(0.2)
    """)
    res = run_sandboxed([sys.executable, "-I", "-S", "-B", "-c", code], workdir=work,
                        limits=FAST, writable=("",))
    assert res.status == "ok", res.output_tail
    wrote, uid = (work / "report.txt").read_text().split()
    assert wrote == "denied" and not outside.exists()
    if ROOT:
        assert int(uid) >= sandbox._UID_BASE
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    left.append(pid)
        except OSError:
            pass
    assert not left, f"a daemon outlived the {backend} run: {left}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_bounds_memory_across_processes(mode, tmp_path, backend):
    """Three processes of 300 MiB each under a 512 MiB run: each fits RLIMIT_AS, the sum does not."""
    mode(backend)
    try:
        sandbox.check_mode()
    except sandbox.SandboxRefused as err:
        pytest.skip(str(err))
    if not sandbox.detect_layers()["memory cgroup"][0]:
        pytest.skip(sandbox.detect_layers()["memory cgroup"][1])
    code = textwrap.dedent("""
        import os, time
        kids = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                block = bytearray(300 << 20)
                block[::4096] = b"\\1" * len(range(0, len(block), 4096))
                time.sleep(1)
                os._exit(0)
            kids.append(pid)
        if any(os.waitpid(p, 0)[1] for p in kids):
            raise MemoryError("a process was killed")
        print("all fit")
    """)
    work = tmp_path / "work"
    work.mkdir()
    res = run_sandboxed([sys.executable, "-I", "-S", "-B", "-c", code], workdir=work,
                        limits=Limits(memory_mb=512, wall_s=30, nproc=16, output_kb=8),
                        writable=("",))
    assert res.status == "memory", (res.status, res.output_tail)
    assert res.peak_memory_mb is not None and res.peak_memory_mb <= 512 + 1


@needs_root
def test_bounded_folder_limits_disk(tmp_path):
    if not sandbox.tmpfs_works()[0]:
        pytest.skip(sandbox.tmpfs_works()[1])
    d = tmp_path / "sub"
    d.mkdir()
    with sandbox.bounded_folder(d, 8) as bounded:
        assert bounded
        with pytest.raises(OSError):
            with open(d / "fill", "wb") as f:
                for _ in range(16):
                    f.write(b"\0" * (1 << 20))
                    f.flush()
    assert not (d / "fill").exists()  # unmounted: the tmpfs contents are gone


def test_notebooks_share_the_submission_deadline(tmp_path):
    """A notebook run gets at most what is left of the budget; none starts after it."""
    from grading import notebooks
    from grading.examples import copy_notebooks, copy_reference

    staging = copy_reference(tmp_path / "staging")
    (staging / "assignments" / notebooks.ASSIGNMENT).mkdir(parents=True)
    copy_notebooks(staging)
    src = notebooks.REPO_ROOT / "assignments" / notebooks.ASSIGNMENT
    cells = {nb: notebooks.read_cells(src / f"{nb}.ipynb") for nb in notebooks.NOTEBOOKS}
    template = notebooks.Template(tmp_path / "template", cells, "course")
    walls = []

    class SlowCrash(notebooks.Nbgrader):
        def template(self, cache_dir):
            return template

        def stage(self, *args):
            pass

        def run(self, course, sid, nbs, limits, fast):  # the one nbgrader run of both notebooks
            walls.append(limits.wall_s)
            time.sleep(1.5)  # it uses up the budget and fails: no notebook is run again on its own
            return sandbox.RunResult(1, "crash", "", 1.5, ())

    res = notebooks.grade_notebooks(staging, "s1", workdir=tmp_path / "nb",
                                    deadline=time.monotonic() + 1.0, nbgrader=SlowCrash())
    assert len(walls) == 1 and walls[0] <= 1.0, walls
    assert all(r.status == "error" and "exit code 1" in r.message for r in res), res
    res = notebooks.grade_notebooks(staging, "s1", workdir=tmp_path / "nb",
                                    deadline=time.monotonic() - 0.1, nbgrader=SlowCrash())
    assert len(walls) == 1 and all(r.status == "timeout" and "time budget" in r.message
                                   for r in res), res


@needs_root
def test_orphans_of_a_killed_grader_are_reaped_live_runs_are_not(monkeypatch):
    """A uid whose lock nobody holds but that still runs processes was left by a dead grader."""
    draws = iter([21, 22])
    monkeypatch.setattr(sandbox.secrets, "randbelow", lambda n: next(draws))
    orphan_uid = sandbox._UID_BASE + 21
    with sandbox.uid_lease() as uid:
        assert uid == orphan_uid  # creates the lock file, then releases it: the grader "died"
    drop = ["setpriv", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    orphan = subprocess.Popen(drop[:1] + [f"--reuid={orphan_uid}", f"--regid={orphan_uid}"]
                              + drop[1:] + ["sleep", "60"])
    with sandbox.uid_lease() as live_uid:
        live = subprocess.Popen(drop[:1] + [f"--reuid={live_uid}", f"--regid={live_uid}"]
                                + drop[1:] + ["sleep", "60"])
        try:
            for _ in range(100):
                if sandbox.uid_processes(orphan_uid) and sandbox.uid_processes(live_uid):
                    break
                time.sleep(0.02)
            reaped = sandbox.reap_orphans()
            assert orphan_uid in reaped and live_uid not in reaped
            assert orphan.wait(timeout=10) == -9
            assert live.poll() is None, "a live run's process was killed"
        finally:
            live.kill()
            live.wait()
