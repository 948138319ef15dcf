"""Hostile and broken submissions graded through the worker (instructor-only tests).

Each submission is the reference cs_layers with a patch appended (a later
definition overrides the reference one), or with files replaced or removed.
Verdicts are asserted from the grader side only.
"""
import os
import socket
import textwrap
from pathlib import Path

import pytest

import cs_layers
import grading
from grading import hidden_tests, sandbox
from grading.sandbox import Limits

REF = Path(cs_layers.__file__).parent
TASKS = ["task2_1", "task2_2", "task2_4", "task2_5"]
LAYERS = sandbox.detect_layers()
NAMESPACES = LAYERS["mount namespace"][0]
UID_DROP = LAYERS["unprivileged user"][0] and os.geteuid() == 0
LIMITS = Limits(cpu_s=10, wall_s=20, memory_mb=1024, nproc=16, fsize_mb=16, output_kb=8)


@pytest.fixture(scope="module")
def suite():
    return hidden_tests.build_suite(b"test-worker-seed", tasks=TASKS)


def submission(root: Path, patches=None, replace=None, drop=(), extra=None) -> Path:
    """A student folder: reference files + appended patches / replacements / extra files."""
    pkg = root / "sub" / "cs_layers"
    pkg.mkdir(parents=True)
    for f in REF.glob("*.py"):
        if f.name in drop:
            continue
        text = (replace or {}).get(f.name)
        if text is None:
            text = f.read_text() + "\n" + textwrap.dedent((patches or {}).get(f.name, ""))
        (pkg / f.name).write_text(text)
    for rel, text in (extra or {}).items():
        (root / "sub" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "sub" / rel).write_text(text)
    return root / "sub"


def grade(tmp_path, suite, case_wall_s=1.5, limits=LIMITS, **kw):
    sub = submission(tmp_path, **kw)
    res = hidden_tests.grade_module(sub, suite, workdir=tmp_path / "work", limits=limits,
                                    case_wall_s=case_wall_s)
    assert [r.task for r in res] == TASKS
    return {r.task: r for r in res}


def assert_passed(results, *tasks):
    for t in tasks:
        assert results[t].status == "passed", (t, results[t].message)
        assert results[t].score == results[t].max_score


LEAK = """
def affine_forward(x, w, b):
    import importlib, os, sys
    report = []
    for p in {secrets!r}:
        try:
            report.append(p + " READ " + str(len(open(p).read())))
        except OSError as e:
            report.append(p + " " + type(e).__name__)
    try:
        open({outside!r}, "w").write("x")
        report.append("WROTE")
    except OSError as e:
        report.append("write " + type(e).__name__)
    try:
        socket_mod = importlib.import_module("socket")
        socket_mod.create_connection(("127.0.0.1", {port}), timeout=1)
        report.append("CONNECTED")
    except OSError as e:
        report.append("net " + type(e).__name__)
    try:
        importlib.import_module("cs_layers.fast_layers")
        report.append("INSTRUCTOR fast_layers IMPORTED")
    except ImportError as e:
        report.append("fast_layers " + type(e).__name__)
    import cs_layers
    report.append("pkg " + os.path.dirname(os.path.abspath(cs_layers.__file__)))
    report.append("path " + repr(sys.path))
    open("outputs/leak.txt", "w").write(chr(10).join(report))
    raise RuntimeError("reported")
"""


def _leak_attempt(tmp_path, suite):
    secrets = [str(Path(grading.__file__).parent / "hidden_tests" / "module_cases.py"), str(REF / "layers.py")]
    outside = tmp_path / "escape.txt"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    patch = LEAK.format(secrets=secrets, outside=str(outside), port=server.getsockname()[1])
    res = grade(tmp_path, suite, patches={"layers.py": patch}, drop=("fast_layers.py",))
    report = (tmp_path / "work" / "outputs" / "leak.txt").read_text()
    try:
        server.accept()
        connected = True
    except socket.timeout:
        connected = False
    server.close()
    return res, report, outside, connected


@pytest.mark.skipif(not NAMESPACES, reason="no mount namespace: " + LAYERS["mount namespace"][1])
def test_student_code_cannot_read_write_or_connect_outside(tmp_path, suite):
    res, report, outside, connected = _leak_attempt(tmp_path, suite)
    assert " READ " not in report, report
    assert "WROTE" not in report and not outside.exists()
    assert "CONNECTED" not in report and not connected
    assert "INSTRUCTOR" not in report
    assert "pkg " + str((tmp_path / "work" / "pkg" / "cs_layers").resolve()) in report
    assert res["task2_1"].status == "error"
    assert res["task2_5"].status == "missing"  # fast_layers.py was not submitted


def test_import_resolves_to_the_submission_without_namespaces(tmp_path, suite, monkeypatch):
    """The venv holds an editable install of the instructor's cs_layers: it must not leak in."""
    monkeypatch.setattr(sandbox, "HOST", sandbox.Host(namespaces=False))  # the grader's machine
    res, report, outside, connected = _leak_attempt(tmp_path, suite)
    assert "INSTRUCTOR" not in report
    assert "fast_layers ModuleNotFoundError" in report
    assert "pkg " + str((tmp_path / "work" / "pkg" / "cs_layers").resolve()) in report
    path_line = next(line for line in report.splitlines() if line.startswith("path "))
    assert repr(str(REF.parent)) not in path_line and repr(str(REF)) not in path_line


def test_only_whitelisted_files_are_copied(tmp_path, suite):
    bomb = "raise SystemExit('this file must never run')\n"
    res = grade(tmp_path, suite, extra={
        "cs_layers/numpy.py": bomb, "cs_layers/sitecustomize.py": bomb,
        "cs_layers/usercustomize.py": bomb, "numpy.py": bomb, "sitecustomize.py": bomb,
        "usercustomize.py": bomb, "cs_layers/hidden.txt": "x"})
    assert_passed(res, *TASKS)
    copied = set(os.listdir(tmp_path / "work" / "pkg" / "cs_layers"))
    assert copied <= {p.name for p in REF.glob("*.py")}
    assert not (set(os.listdir(tmp_path / "work")) - {"pkg", "inputs", "outputs", "worker.py", "probes.py",
                                                         "torch_probes.py", "plan.json", "reference"})
    assert os.listdir(tmp_path / "work" / "reference") == ["geometry.py"]   # the instructor's, for given code


def test_infinite_loop_times_out_only_its_task(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": """
        def conv_forward_naive(x, w, b, conv_param):
            while True:
                pass
    """})
    assert res["task2_2"].status == "timeout" and res["task2_2"].score == 0
    assert_passed(res, "task2_1", "task2_4", "task2_5")


def test_import_time_hang_costs_only_that_module(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": "while True:\n    pass\n"})
    for t in ("task2_1", "task2_2", "task2_4"):
        assert res[t].status == "timeout", res[t].message
        assert "importing cs_layers/layers.py" in res[t].message
    assert_passed(res, "task2_5")


def test_memory_bomb_is_memory(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": """
        def max_pool_forward_naive(x, pool_param):
            chunks = []
            while True:  # np.empty reserves address space without touching it: quick
                chunks.append(np.empty(32 * 1024 * 1024))
    """})
    assert res["task2_4"].status == "memory", res["task2_4"].message
    assert 0 < res["task2_4"].score < res["task2_4"].max_score  # the backward cases still pass
    assert_passed(res, "task2_1", "task2_2", "task2_5")


@pytest.mark.skipif(not (NAMESPACES and UID_DROP),
                    reason="a fork bomb is only run with a pid namespace and a throw-away uid")
def test_fork_bomb_is_contained(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": """
        def relu_forward(x):
            import os, time
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
    """})
    assert res["task2_1"].status in ("timeout", "error"), res["task2_1"].message
    assert res["task2_1"].score < res["task2_1"].max_score
    assert_passed(res, "task2_2", "task2_4", "task2_5")


def test_exit_mid_test_costs_only_that_case(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": """
        def affine_forward(x, w, b):
            import os
            os._exit(3)

        def relu_forward(x):
            import sys
            sys.exit(0)
    """})
    r = res["task2_1"]
    assert r.status == "error", r.message
    assert r.score == pytest.approx(r.max_score * 2 / 6)  # the two softmax_loss cases pass
    assert "SystemExit" in r.message
    assert_passed(res, "task2_2", "task2_4", "task2_5")


def test_fake_objects_and_bad_arrays_never_pass(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": """
        class AlwaysEqual:
            def __eq__(self, other):
                return True
            __array_priority__ = 1000

        def affine_forward(x, w, b):
            return AlwaysEqual(), (x, w, b)

        def relu_forward(x):
            return (x > 0).astype(np.int64) * 0, x

        def softmax_loss(x, y):
            return float("nan"), np.full(x.shape, np.nan)

        def conv_forward_naive(x, w, b, conv_param):
            return np.zeros((1, 2, 3)), (x, w, b, conv_param)
    """})
    r1 = res["task2_1"]
    assert r1.status == "rejected" and r1.score == 0, r1.message
    assert "AlwaysEqual" in r1.message
    assert "dtype int64" in r1.message and "NaN" in r1.message
    assert res["task2_2"].status == "failed" and "shape" in res["task2_2"].message
    assert_passed(res, "task2_4", "task2_5")


def test_monkeypatching_numpy_does_not_help(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": """
        np.allclose = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        np.array_equal = lambda *a, **k: True
        import cs_layers.gradient_check as _gc
        _gc.rel_error = lambda *a, **k: 0.0

        def conv_forward_naive(x, w, b, conv_param):
            H_out = 1 + (x.shape[2] + 2 * conv_param["pad"] - w.shape[2]) // conv_param["stride"]
            W_out = 1 + (x.shape[3] + 2 * conv_param["pad"] - w.shape[3]) // conv_param["stride"]
            return np.zeros((x.shape[0], w.shape[0], H_out, W_out), x.dtype), None
    """})
    assert res["task2_2"].status == "failed" and res["task2_2"].score == 0
    assert "relative error" in res["task2_2"].message


def test_not_implemented_is_missing(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": """
        def conv_forward_naive(x, w, b, conv_param):
            raise NotImplementedError("task2_2: implement conv_forward_naive")
    """})
    assert res["task2_2"].status == "missing" and res["task2_2"].score == 0
    assert_passed(res, "task2_1", "task2_4", "task2_5")


def test_syntax_error_and_missing_file(tmp_path, suite):
    res = grade(tmp_path, suite, replace={"layers.py": "import numpy as np\ndef broken(:\n"},
                drop=("fast_layers.py",))
    for t in ("task2_1", "task2_2", "task2_4"):
        assert res[t].status == "error" and res[t].score == 0
        assert "SyntaxError" in res[t].message and "layers.py:2" in res[t].message
    assert res["task2_5"].status == "missing"
    assert "fast_layers.py is not in the submission" in res["task2_5"].message


def test_enormous_output_costs_only_that_case(tmp_path, suite):
    res = grade(tmp_path, suite, limits=Limits(cpu_s=10, wall_s=20, fsize_mb=4, output_kb=8),
                patches={"layers.py": """
        def relu_forward(x):
            import sys
            while True:
                sys.stdout.write("spam" * 16384)
    """})
    assert res["task2_1"].status == "error", res["task2_1"].message
    assert_passed(res, "task2_2", "task2_4", "task2_5")


@pytest.mark.skipif(not UID_DROP, reason="inputs are protected by file ownership only as root")
def test_inputs_and_plan_are_read_only_to_student_code(tmp_path, suite):
    res = grade(tmp_path, suite, patches={"layers.py": """
        def relu_forward(x):
            import glob
            done = []
            for p in ["plan.json", "worker.py", "probes.py", "reference/geometry.py"] + glob.glob("inputs/*.npy")[:3]:
                try:
                    open(p, "w").write("tampered")
                    done.append(p)
                except OSError:
                    pass
            open("outputs/tamper.txt", "w").write(repr(done))
            return np.maximum(x, 0), x
    """})
    assert (tmp_path / "work" / "outputs" / "tamper.txt").read_text() == "[]"
    assert_passed(res, *TASKS)


def test_status_folder_link_is_not_followed(tmp_path, suite):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.start").write_text("grader files must survive")
    os.chmod(tmp_path, 0o755)
    res = grade(tmp_path, suite, patches={"layers.py": f"""
        def relu_forward(x):
            import os, shutil
            shutil.rmtree("outputs/status")
            os.symlink({str(victim)!r}, "outputs/status")
            os._exit(1)
    """})
    assert (victim / "keep.start").exists()
    assert res["task2_1"].status == "error"
    assert_passed(res, "task2_2", "task2_4", "task2_5")
