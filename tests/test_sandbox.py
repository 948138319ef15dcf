"""The sandbox on its own: isolation layers, limits, output cap (instructor-only tests).

Tests that need a layer this machine lacks are skipped with the reason; on the
course's Linux CI machines (root, util-linux unshare) all of them run.
"""
import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest

import cs_layers
import grading
from grading import sandbox
from grading.sandbox import Limits, run_sandboxed

LAYERS = sandbox.detect_layers()
NAMESPACES = LAYERS["mount namespace"][0]
UID_DROP = LAYERS["unprivileged user"][0] and os.geteuid() == 0
needs_ns = pytest.mark.skipif(not NAMESPACES, reason="no mount/network namespace here: "
                              + LAYERS["mount namespace"][1])
FAST = Limits(cpu_s=10, wall_s=15, memory_mb=1024, nproc=16, fsize_mb=16, output_kb=8)


def run_py(tmp_path, code, limits=FAST, **kw):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    argv = [sys.executable, "-I", "-S", "-B", "-c", textwrap.dedent(code)]
    return run_sandboxed(argv, workdir=work, limits=limits, **kw), work


def test_detect_layers_reports_every_layer():
    assert set(LAYERS) == set(sandbox.LAYER_NAMES)
    for name, (active, reason) in LAYERS.items():
        assert isinstance(active, bool) and reason, f"layer {name} needs a reason string"


def test_plain_run_ok_and_workdir_writable(tmp_path):
    res, work = run_py(tmp_path, "open('made.txt', 'w').write('hi'); print('hello')")
    assert res.status == "ok", res.output_tail
    assert res.returncode == 0
    assert "hello" in res.output_tail
    assert (work / "made.txt").read_text() == "hi"


@needs_ns
def test_instructor_files_invisible_and_outside_writes_fail(tmp_path):
    secrets = [Path(grading.__file__).parent / "hidden_tests" / "module_cases.py",
               Path(cs_layers.__file__).parent / "layers.py", Path("/root"), Path("/home")]
    outside = tmp_path / "escape.txt"
    assert secrets[0].exists() and secrets[1].exists()
    code = f"""
        import os
        report = []
        for p in {[str(p) for p in secrets]!r}:
            try:
                if os.path.isdir(p):
                    report.append(p + ' LISTED ' + str(os.listdir(p)))
                else:
                    report.append(p + ' READ ' + str(len(open(p).read())))
            except OSError as e:
                report.append(p + ' ' + type(e).__name__)
        for p in ({str(outside)!r}, '/tmp/x', '/escape'):
            try:
                open(p, 'w').write('x')
                report.append(p + ' WROTE')
            except OSError as e:
                report.append(p + ' ' + type(e).__name__)
        open('report.txt', 'w').write(chr(10).join(report))
    """
    res, work = run_py(tmp_path, code)
    assert res.status == "ok", res.output_tail
    report = (work / "report.txt").read_text()
    assert " READ " not in report and " WROTE" not in report, report
    assert "/root LISTED" not in report or "/root LISTED ['.pyenv']" in report, report
    assert not outside.exists()
    assert not Path("/escape").exists()


@needs_ns
def test_no_network(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    code = f"""
        import socket
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=2)
            out = 'CONNECTED'
        except OSError as e:
            out = type(e).__name__
        open('net.txt', 'w').write(out)
    """
    res, work = run_py(tmp_path, code)
    assert res.status == "ok", res.output_tail
    assert (work / "net.txt").read_text() != "CONNECTED"
    with pytest.raises(socket.timeout):
        server.accept()  # nothing reached the grader's loopback
    server.close()


def test_environment_is_cleared(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "s3cret")
    res, _ = run_py(tmp_path, "import os; print(sorted(os.environ))")
    assert res.status == "ok", res.output_tail
    assert "GRADER_SECRET" not in res.output_tail


@pytest.mark.skipif(not UID_DROP, reason="the grader is not root, so there is no uid to drop")
def test_runs_as_unprivileged_uid(tmp_path):
    res, _ = run_py(tmp_path, "import os; print('uid', os.getuid(), os.geteuid())")
    uid = int(res.output_tail.split()[1])
    assert uid >= sandbox._UID_BASE


def test_wall_timeout_kills(tmp_path):
    res, _ = run_py(tmp_path, "import time\nwhile True: time.sleep(0.01)",
                    limits=Limits(cpu_s=30, wall_s=1.0, output_kb=8))
    assert res.status == "timeout"
    assert res.duration_s < 5


def test_cpu_limit_is_a_timeout(tmp_path):
    res, _ = run_py(tmp_path, "while True: pass", limits=Limits(cpu_s=1, wall_s=20, output_kb=8))
    assert res.status == "timeout"
    assert res.duration_s < 10


def test_watchdog_kills(tmp_path):
    res, _ = run_py(tmp_path, "import time\ntime.sleep(30)", limits=Limits(wall_s=20),
                    watchdog=lambda: "stop")
    assert res.status == "timeout"
    assert res.duration_s < 5


def test_memory_bomb_is_memory(tmp_path):
    code = "chunks = []\nwhile True: chunks.append(bytearray(50 * 1024 * 1024))"
    res, _ = run_py(tmp_path, code, limits=Limits(memory_mb=512, wall_s=20))
    assert res.status == "memory", res.output_tail


@pytest.mark.skipif(not (NAMESPACES and UID_DROP),
                    reason="a fork bomb is only run with a pid namespace and a throw-away uid")
def test_fork_bomb_is_contained(tmp_path):
    code = """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    """
    res, _ = run_py(tmp_path, code, limits=Limits(cpu_s=5, wall_s=2.0, nproc=8, output_kb=8))
    assert res.status == "timeout"
    assert res.duration_s < 10
    assert res.uid is not None
    leftovers = sandbox.uid_processes(res.uid)  # only this run's uid: others may be grading too
    assert not leftovers, f"sandbox processes survived: {leftovers}"


def test_enormous_output_is_capped(tmp_path):
    code = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    res, _ = run_py(tmp_path, code, limits=Limits(fsize_mb=4, wall_s=20, output_kb=8))
    assert res.status in ("crash", "timeout")  # SIGXFSZ at the file-size limit
    assert len(res.output_tail) < 8 * 1024 + 200
    assert "earlier bytes of output cut" in res.output_tail


def test_fallback_without_namespaces_still_runs(tmp_path, caplog):
    no_namespaces = sandbox.Host(namespaces=False)  # a machine without bwrap or unshare
    sandbox.redetect()  # the warnings are logged once per host: log them again here
    layers = sandbox.detect_layers(no_namespaces)
    assert layers["mount namespace"][0] is False
    assert "namespace backends are off" in layers["mount namespace"][1]
    assert "SANDBOX LAYER MISSING" in caplog.text
    res, work = run_py(tmp_path, "open('x.txt', 'w').write('ok')", host=no_namespaces)
    assert res.status == "ok", res.output_tail
    assert "mount namespace" in res.missing_layers
    assert (work / "x.txt").read_text() == "ok"
