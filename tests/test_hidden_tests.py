"""Hidden-test suite: inputs from the seed, reference full marks, safe messages, model grading."""
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cs_layers
from cs_layers import course
from grading import hidden_tests
from grading.hidden_tests import MODULE_TASKS, TASK_POINTS, build_suite, compare, grade_model, verdicts
from grading.results import STATUSES

REF = Path(cs_layers.__file__).parent


@pytest.fixture(scope="module")
def suite():
    return build_suite(b"test-hidden-seed")


def test_points_cover_every_graded_task():
    assert set(TASK_POINTS) == set(MODULE_TASKS) | {"task2_9"} | set(hidden_tests.TORCH_TASKS)
    assert all(p > 0 for p in TASK_POINTS.values())


def test_same_seed_same_suite_other_seed_other_inputs(suite):
    again = build_suite(b"test-hidden-seed", tasks=["task2_2"])
    other = build_suite(b"another-seed", tasks=["task2_2"])
    mine = [c for c in suite.cases if c.task == "task2_2"]
    for a, b in zip(mine, again.cases):
        assert (a.label, a.probe, a.params) == (b.label, b.probe, b.params)
        for k in a.arrays:
            np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    assert [c.label for c in again.cases] != [c.label for c in other.cases] or any(
        not np.array_equal(a.arrays[k], b.arrays[k]) for a, b in zip(again.cases, other.cases) for k in a.arrays)


def test_suite_covers_the_hard_cases(suite):
    assert set(c.task for c in suite.cases) == set(MODULE_TASKS)
    dtypes = {str(v.dtype) for c in suite.cases for v in c.arrays.values() if v.dtype.kind == "f"}
    assert dtypes == {"float32", "float64"}
    conv = [c for c in suite.cases if c.task in ("task2_2", "task2_3", "task2_5")]
    params = [c.params["conv_param"] for c in conv]
    assert any(p["stride"] > 1 for p in params) and any(p["pad"] > 0 for p in params)
    kernels = [c.arrays["w"].shape for c in conv]
    assert any(h != w for (_, _, h, w) in kernels), "need a non-square kernel"
    images = [c.arrays["x"].shape for c in conv]
    assert any(h != w for (_, _, h, w) in images), "need a rectangular input"
    # naive inputs stay small so that grading is cheap
    naive = [v for c in suite.cases if c.task in ("task2_2", "task2_3", "task2_4")
             for v in c.arrays.values()]
    assert max(v.size for v in naive) <= 2 * 4 * 9 * 9 * 3


def test_every_case_has_reference_outputs_and_a_tolerance(suite):
    for c in suite.cases:
        assert c.expected, c.label
        assert all(np.all(np.isfinite(v)) for v in c.expected.values()), c.label
        f32 = any(v.dtype == np.float32 for v in c.arrays.values())
        assert c.tol == (hidden_tests.TOL["float32"] if f32 else hidden_tests.TOL["float64"])


def test_reference_gets_full_marks(tmp_path, suite):
    results = hidden_tests.grade_module(REF.parent, suite, workdir=tmp_path / "work")
    assert [r.task for r in results] == list(MODULE_TASKS)
    for r in results:
        assert r.status == "passed", (r.task, r.message)
        assert r.score == r.max_score == TASK_POINTS[r.task]
        assert r.tolerance is not None


def _numbers(message):
    """Decimal numbers in a message other than 'X.Ye-NN' errors/tolerances."""
    return [m for m in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", message) if "e" not in m]


def test_partly_wrong_submission_gets_partial_safe_feedback(tmp_path, suite):
    pkg = tmp_path / "sub" / "cs_layers"
    pkg.mkdir(parents=True)
    for f in REF.glob("*.py"):
        (pkg / f.name).write_text(f.read_text())
    with open(pkg / "layers.py", "a") as f:  # ignores the stride: right only when stride == 1
        f.write("""
_ref_conv = conv_forward_naive
def conv_forward_naive(x, w, b, conv_param):
    out, cache = _ref_conv(x, w, b, {"stride": 1, "pad": conv_param["pad"]})
    return out, (x, w, b, conv_param)
""")
    tasks = ["task2_2", "task2_4"]
    small = build_suite(b"partly-wrong", tasks=tasks)
    strides = [c.params["conv_param"]["stride"] for c in small.cases if c.task == "task2_2"]
    res = {r.task: r for r in hidden_tests.grade_module(tmp_path / "sub", small,
                                                         workdir=tmp_path / "work")}
    assert res["task2_4"].status == "passed"
    r = res["task2_2"]
    n_ok = sum(s == 1 for s in strides)
    assert r.score == pytest.approx(TASK_POINTS["task2_2"] * n_ok / len(strides))
    if n_ok < len(strides):
        assert r.status == "failed"
        assert "shape" in r.message or "relative error" in r.message
        assert "stride" in r.message
    assert not _numbers(r.message), f"feedback shows values: {r.message}"


def test_compare_verdicts_and_messages():
    exp = np.linspace(-1, 1, 12).reshape(3, 4)
    assert compare(exp.copy(), exp, 1e-7) == (True, "")
    ok, msg = compare(exp + 1e-3, exp, 1e-7)
    assert not ok and "relative error 1.0e-03 > 1e-07" in msg and "index" in msg
    assert not _numbers(msg)
    ok, msg = compare(exp.astype(np.int64), exp, 1e-7)
    assert not ok and "dtype int64" in msg
    ok, msg = compare(exp.T, exp, 1e-7)
    assert not ok and "shape (4, 3)" in msg
    bad = exp.copy()
    bad[0, 0] = np.nan
    ok, msg = compare(bad, exp, 1e-7)
    assert not ok and "NaN" in msg
    assert compare(exp.astype(np.float32), exp, 1e-4)[0]  # float32 is fine within its tolerance


def test_worker_outputs_are_validated_as_data(tmp_path):
    exp = np.zeros((2, 3))
    good = tmp_path / "good.npy"
    np.save(good, exp + 1.0)
    assert verdicts.load_output(good, exp)[0].shape == (2, 3)
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([object()], dtype=object), allow_pickle=True)
    assert verdicts.load_output(pickled, exp)[0] is None
    link = tmp_path / "link.npy"
    link.symlink_to(good)
    arr, why = verdicts.load_output(link, exp)
    assert arr is None and "not a regular file" in why
    huge = tmp_path / "huge.npy"
    np.save(huge, np.zeros(10_000))
    assert "more than" in verdicts.load_output(huge, exp)[1]
    fifo = tmp_path / "fifo.npy"
    os.mkfifo(fifo)  # opening it for reading would block forever without O_NONBLOCK
    arr, why = verdicts.load_output(fifo, exp)
    assert arr is None and "named pipe" in why


# ---------------------------------------------------------------- task2_9
def _checkpoint(path, dataset="digits", seed=0):
    from cs_layers.cnn import ThreeLayerConvNet, save_model

    np.random.seed(seed)
    model = ThreeLayerConvNet(input_dim=(3, 32, 32), num_filters=4, filter_size=3, hidden_dim=10,
                              weight_scale=1e-2)
    save_model(path, model, dataset=dataset)
    return model


def test_grade_model_full_partial_and_missing(tmp_path):
    path = tmp_path / "convnet_model.npz"
    model = _checkpoint(path)
    X = np.random.default_rng(1).standard_normal((40, 3, 32, 32)).astype(np.float32)
    y_model = np.argmax(model.loss(X), axis=1)
    r = grade_model(path, data=(X, y_model))
    assert (r.status, r.score) == ("passed", TASK_POINTS["task2_9"])
    y_wrong = (y_model + 1) % 10
    r = grade_model(path, data=(X, y_wrong))
    assert (r.status, r.score) == ("failed", 0.0)
    assert "accuracy 0.000" in r.message
    half = np.where(np.arange(40) < 20, y_model, y_wrong)
    r = grade_model(path, data=(X, half))
    assert r.status == "failed" and 0 < r.score < TASK_POINTS["task2_9"]
    r = grade_model(None)
    assert r.status == "missing" and "convnet_model.npz" in r.message


def test_grade_model_on_the_digits_test_split(tmp_path):
    path = tmp_path / "convnet_model.npz"
    _checkpoint(path)
    r = grade_model(path)
    assert r.status == "failed" and r.score < TASK_POINTS["task2_9"]  # an untrained net
    assert "digits test accuracy" in r.message


def test_grade_model_refuses_bad_files(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    assert grade_model(corrupt).status == "rejected"
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, W1=np.array([object()], dtype=object), b1=np.zeros(2))
    r = grade_model(pickled)
    assert r.status == "rejected" and r.score == 0
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("W1.npy", b"\0" * (course.MAX_MODEL_BYTES + 1))
    r = grade_model(bomb)
    assert r.status == "rejected" and "MiB" in r.message


def test_grade_model_cifar_absent_is_an_instructor_error(tmp_path):
    path = tmp_path / "convnet_model.npz"
    _checkpoint(path, dataset="cifar10")

    def absent(name):
        raise FileNotFoundError("CIFAR-10 is not in datasets/cifar-10-batches-py")

    r = grade_model(path, load_heldout=absent)
    assert r.status == "error" and "download" in r.message
    assert r.status in STATUSES


# ---------------------------------------------------------------- task2_0: geometry
GEOMETRY_TASKS = ["task2_0", "task2_2", "task2_4", "task2_5", "task2_7", "task2_8"]


@pytest.fixture(scope="module")
def geometry_suite():
    return build_suite(b"geometry-seed", tasks=GEOMETRY_TASKS)


def _submission(tmp_path, geometry_patch=None, drop_geometry=False):
    pkg = tmp_path / "sub" / "cs_layers"
    pkg.mkdir(parents=True)
    for f in REF.glob("*.py"):
        (pkg / f.name).write_text(f.read_text())
    if drop_geometry:
        (pkg / "geometry.py").unlink()
    if geometry_patch:
        with open(pkg / "geometry.py", "a") as f:
            f.write(geometry_patch)
    return tmp_path / "sub"


@pytest.mark.parametrize("patch, status", [
    ("""
_ref_size, _ref_count = conv_output_size, conv_param_count
def conv_output_size(size, kernel, stride=1, pad=0):   # rounds down instead of refusing, and is off by one
    return (size + 2 * pad - kernel) // stride
def conv_param_count(in_channels, out_channels, kernel_size, bias=True):   # forgets the bias
    return _ref_count(in_channels, out_channels, kernel_size, bias=False)
""", "failed"),
    ("""
def conv_output_size(size, kernel, stride=1, pad=0):
    raise NotImplementedError("task2_0: implement conv_output_size")
def conv_param_count(in_channels, out_channels, kernel_size, bias=True):
    raise NotImplementedError("task2_0: implement conv_param_count")
""", "missing"),
    (None, "missing"),   # geometry.py left out of the submission
])
def test_a_wrong_geometry_costs_task2_0_alone(tmp_path, geometry_suite, patch, status):
    # The given code (shape checks, ThreeLayerConvNet) calls the student's geometry, but the
    # worker installs the instructor's copy for it: every later task still gets full marks.
    sub = _submission(tmp_path, patch, drop_geometry=patch is None)
    res = {r.task: r for r in hidden_tests.grade_module(sub, geometry_suite, workdir=tmp_path / "work")}
    assert res["task2_0"].status == status and res["task2_0"].score < TASK_POINTS["task2_0"], res["task2_0"]
    for task in GEOMETRY_TASKS[1:]:
        assert res[task].status == "passed" and res[task].score == TASK_POINTS[task], (task, res[task].message)


def test_task2_0_cases_check_ints_exactly_and_the_refusal(geometry_suite):
    cases = [c for c in geometry_suite.cases if c.task == "task2_0"]
    assert {c.probe for c in cases} == {"conv_output_size", "conv_param_count", "conv_macs", "receptive_field"}
    assert any(c.params.get("raises") for c in cases)
    assert all(c.checks[n] is hidden_tests.exact for c in cases for n in c.expected)
    ok, _ = hidden_tests.exact(np.asarray(768000), np.asarray(768000.0), 1e-7)
    assert ok
    for got, why in [(np.asarray(768001), "exact integer"), (np.asarray(768000.0), "dtype float64")]:
        ok, message = hidden_tests.exact(got, np.asarray(768000.0), 1e-7)
        assert not ok and why in message and "768" not in message


def test_a_pool_backward_that_feeds_every_tied_max_fails_the_ties_case(tmp_path):
    # Windows of zeros after a ReLU tie; the gradient goes to the first max only
    sub = _submission(tmp_path)
    with open(sub / "cs_layers" / "layers.py", "a") as f:
        f.write('''
def max_pool_backward_naive(dout, cache):
    x, p = cache
    ph, pw, s = p["pool_height"], p["pool_width"], p["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = x[:, :, i * s:i * s + ph, j * s:j * s + pw]
            top = win == win.max(axis=(2, 3), keepdims=True)   # every tied max
            dx[:, :, i * s:i * s + ph, j * s:j * s + pw] += top * dout[:, :, i:i + 1, j:j + 1]
    return dx
''')
    small = build_suite(b"ties", tasks=["task2_4"])
    res = {r.task: r for r in hidden_tests.grade_module(sub, small, workdir=tmp_path / "work")}
    assert res["task2_4"].status == "failed", res["task2_4"].message
    assert "ties" in res["task2_4"].message and res["task2_4"].score == pytest.approx(
        TASK_POINTS["task2_4"] * (len(small.cases) - 1) / len(small.cases))


def test_a_worker_crash_says_how_it_ended_without_the_inputs(tmp_path, caplog):
    pkg = tmp_path / "s042" / "cs_layers"
    pkg.mkdir(parents=True)
    for f in REF.glob("*.py"):
        (pkg / f.name).write_text(f.read_text())
    with open(pkg / "layers.py", "a") as f:  # prints a hidden value, then dies by a signal
        f.write("""
def max_pool_backward_naive(dout, cache):
    import os, signal
    print("first input value", float(cache[0].ravel()[0]), flush=True)
    os.kill(os.getpid(), signal.SIGABRT)
""")
    small = build_suite(b"crash-seed", tasks=["task2_4"])
    with caplog.at_level("WARNING", logger="grading.hidden_tests.runner"):
        (r,) = hidden_tests.grade_module(tmp_path / "s042", small, workdir=tmp_path / "work")
    assert r.status == "error"
    assert "signal SIGABRT; its last output: first input value #" in r.message, r.message
    assert not _numbers(r.message), f"feedback shows values: {r.message}"
    assert any("worker stopped in" in m and "SIGABRT" in m for m in caplog.messages), caplog.messages


@pytest.mark.parametrize("rc, namespaced, said", [
    (-6, False, "signal SIGABRT"),   # the grader waited on the process itself
    (134, True, "signal SIGABRT"),   # a namespace's init reports 128 + the signal
    (134, False, "exit code 134"),   # without namespaces 134 is only an exit code
    (3, True, "exit code 3"),
])
def test_how_a_worker_ended_follows_the_sandbox_backend(rc, namespaced, said):
    from grading import sandbox
    from grading.hidden_tests.runner import how_it_ended
    run = sandbox.RunResult(rc, "crash", "", 0.1, signal=sandbox._signal(rc, namespaced))
    assert how_it_ended(run) == f"{said}, no output"
