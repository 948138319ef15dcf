"""Hidden tests of the PyTorch tasks (task3_1 to task3_5), graded in a sandboxed torch worker.

Grader side. The cases are ordinary hidden_tests Case objects whose probes are
those of grading/torch_probes.py (shared with the worker); the grader runs the
same probes on the instructor's cs_layers.torch_nets for the expected outputs.
One worker process per student runs every PyTorch case and imports torch once,
before any student code, with CUDA hidden: no point depends on the device.

    suite = hidden_tests.build_suite(seed)            # suite.torch is built here
    results = grade_torch(staging, suite, workdir=tmp)  # task3_1 .. task3_5

What is checked, per task, on fresh inputs drawn from the secret seed:
- task3_1, task3_2 (barebones): scores, dx and every parameter gradient against
  autograd on the reference, float64 and float32, odd batch sizes and image
  sizes; random_weight / three_layer_convnet_params: shapes, Kaiming statistics
  (std within 10% of sqrt(2 / fan_in), mean ~ 0), zero biases, leaf tensors
  with requires_grad.
- task3_3, task3_4 (nn.Module, nn.Sequential): parameter shapes in registration
  order, the initialisation (Kaiming + zero biases for the classes), and with
  fixed weights the scores, loss, gradients and the loss after one SGD step.
- task3_5 (challenge): the student's challenge_model(dataset) is built in the
  sandbox, the saved weights are loaded with torch.load(weights_only=True), and
  only its logits on held-out test images come back; the accuracy is computed
  here against labels that never enter the sandbox. Full points at the target,
  none at chance, linear between (CHALLENGE_TARGETS).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cs_layers import course
from grading import torch_probes, unpack
from grading.hidden_tests.points import TASK_POINTS, TORCH_TASKS
from grading.hidden_tests.runner import grade_module
from grading.hidden_tests.suite import Case, Draw, Suite, reference_outputs
from grading.hidden_tests.verdicts import load_output
from grading.results import TaskResult
from grading.sandbox import Limits

CHALLENGE_TASK = "task3_5"
CHALLENGE_FILE = unpack.CHALLENGE_FILE  # in the submission, next to convnet_model.npz
STAGED_WEIGHTS = Path("challenge") / course.CHALLENGE_FILE  # in the worker's folder, read-only
CHALLENGE_TARGETS = {"patterns": 0.90, "digits": 0.95, "cifar10": 0.70}  # held-out test accuracy for full points
CHANCE = 0.10
CIFAR_HELDOUT = 1000  # CIFAR-10 test images drawn per grading run (patterns, digits: the whole test split)
INIT_TOL = 0.10  # std within 10% of sqrt(2 / fan_in)
# One torch worker per student: importing torch maps a few GiB of address space and takes
# seconds; one case (the challenge on 1000 CIFAR images, one thread) may take up to a minute.
TORCH_LIMITS = Limits(cpu_s=150, wall_s=240.0, memory_mb=8192, nproc=32, fsize_mb=64, output_kb=16)
TORCH_CASE_WALL_S = 60.0


@dataclass
class ChallengeCase(Case):
    """The task3_5 case: held-out images go in; the labels stay here."""
    labels: dict = field(default_factory=dict)  # dataset -> (n,) int labels


# ---------------------------------------------------------------- grader-side checks
def kaiming(received: np.ndarray, expected: np.ndarray, tol: float) -> tuple[bool, str]:
    """Initialisation statistics; `expected` holds the target std in every element."""
    if received.dtype.kind != "f" or received.shape != expected.shape:
        return False, f"shape {received.shape} / dtype {received.dtype}, expected {expected.shape} floats"
    if not np.all(np.isfinite(received)):
        return False, "contains NaN/inf values"
    target = float(expected.flat[0])
    std, mean = float(received.std()), float(received.mean())
    if abs(std / target - 1) > INIT_TOL:
        return False, f"std {std:.3g}, expected sqrt(2 / fan_in) = {target:.3g} (Kaiming normal)"
    if abs(mean) > 6 * target / np.sqrt(received.size):
        return False, f"mean {mean:.2g} is far from 0 (Kaiming normal has mean 0)"
    return True, ""


def logits_ok(received: np.ndarray, expected: np.ndarray, tol: float) -> tuple[bool, str]:
    if received.dtype.kind != "f" or received.ndim != 2 or received.shape[1] != 10:
        return False, f"logits of shape {received.shape} / dtype {received.dtype}; expected (N, 10) floats"
    if not np.all(np.isfinite(received)):
        return False, "the logits contain NaN/inf values"
    return True, ""


def code_ok(received: np.ndarray, expected: np.ndarray, tol: float) -> tuple[bool, str]:
    ok = received.shape == (1,) and received.dtype.kind == "f" and float(received[0]) in \
        {float(v) for v in torch_probes.DATASET_CODES.values()}
    return ok, "" if ok else "the worker returned no dataset name"


# ---------------------------------------------------------------- case builders
def _odd(draw: Draw, lo, hi):
    return int(draw.rng.choice([n for n in range(lo, hi + 1) if n % 2 == 1]))


def _task3_1(draw: Draw):
    for dtype in ("float64", "float32"):
        N, dims, H, K = _odd(draw, 1, 7), tuple(int(d) for d in draw.rng.integers(1, 5, size=3)), 7, 5
        D = int(np.prod(dims))
        draw.case("task3_1", f"two_layer_fc forward/backward, {dtype}, x {N}x" + "x".join(map(str, dims)) +
                  f", hidden {H}, {K} classes", "two_layer_fc", dtype,
                  x=draw.normal((N, *dims), dtype), w1=draw.normal((D, H), dtype), w2=draw.normal((H, K), dtype),
                  dout=draw.normal((N, K), dtype))
    for shape in ((int(draw.rng.integers(300, 500)), 200), (32, 6, 5, 5)):
        c = draw.case("task3_1", f"random_weight{shape}: Kaiming statistics, leaf with grad", "random_weight",
                      shape=list(shape), outputs=("t0", "leaf_grad", "count"), checks={"t0": kaiming})
        c.tol = INIT_TOL


def _task3_2(draw: Draw):
    for dtype in ("float64", "float32"):
        N, C = _odd(draw, 1, 5), int(draw.rng.integers(1, 4))
        H, W = _odd(draw, 3, 9), int(draw.rng.integers(3, 9))
        C1, C2, K = int(draw.rng.integers(2, 6)), int(draw.rng.integers(2, 6)), int(draw.rng.integers(2, 7))
        draw.case("task3_2", f"three_layer_convnet forward/backward, {dtype}, x {N}x{C}x{H}x{W}, "
                  f"channels {C1}, {C2}, {K} classes", "three_layer_convnet", dtype,
                  x=draw.normal((N, C, H, W), dtype), w1=draw.normal((C1, C, 5, 5), dtype, 0.3),
                  b1=draw.normal((C1,), dtype), w2=draw.normal((C2, C1, 3, 3), dtype, 0.3),
                  b2=draw.normal((C2,), dtype), fc_w=draw.normal((C2 * H * W, K), dtype, 0.2),
                  fc_b=draw.normal((K,), dtype), dout=draw.normal((N, K), dtype))
    dims = [3, int(draw.rng.integers(12, 20)), int(draw.rng.integers(6, 10)), 10, _odd(draw, 5, 9), 6]
    c = draw.case("task3_2", f"three_layer_convnet_params{tuple(dims)}: shapes, Kaiming weights, "
                  "zero biases, leaves with grad", "three_layer_convnet_params", dims=dims,
                  outputs=tuple(f"t{i}" for i in range(6)) + ("leaf_grad", "count"),
                  checks={"t0": kaiming, "t2": kaiming, "t4": kaiming})
    c.tol = INIT_TOL


def _fc_kwargs(draw: Draw):
    dims = (int(draw.rng.integers(1, 4)), _odd(draw, 3, 5), int(draw.rng.integers(2, 5)))
    return dims, {"input_size": int(np.prod(dims)), "hidden_size": int(draw.rng.integers(5, 12)),
                  "num_classes": int(draw.rng.integers(3, 7))}


def _conv_kwargs(draw: Draw):
    return {"in_channel": int(draw.rng.integers(1, 4)), "channel_1": int(draw.rng.integers(2, 5)),
            "channel_2": int(draw.rng.integers(2, 5)), "num_classes": int(draw.rng.integers(3, 7)),
            "height": _odd(draw, 3, 7), "width": int(draw.rng.integers(3, 7))}


def _param_shapes(kw):
    if "input_size" in kw:
        D, H, K = kw["input_size"], kw["hidden_size"], kw["num_classes"]
        return [(H, D), (H,), (K, H), (K,)]
    C, C1, C2, K = kw["in_channel"], kw["channel_1"], kw["channel_2"], kw["num_classes"]
    return [(C1, C, 5, 5), (C1,), (C2, C1, 3, 3), (C2,), (K, C2 * kw["height"] * kw["width"]), (K,)]


def _init_kwargs(draw: Draw, fc: bool):
    """Sizes large enough that the sample std of every weight is within ~2% of its target."""
    if fc:
        return {"input_size": int(draw.rng.integers(300, 500)), "hidden_size": int(draw.rng.integers(150, 250)),
                "num_classes": 10}
    return {"in_channel": 3, "channel_1": int(draw.rng.integers(16, 24)), "channel_2": 8,
            "num_classes": 10, "height": _odd(draw, 7, 9), "width": int(draw.rng.integers(7, 10))}


def _model_cases(draw: Draw, task: str, fc: str, conv: str, kaiming_init: bool):
    for builder in (fc, conv):
        kw = _init_kwargs(draw, builder == fc)
        n = len(_param_shapes(kw))
        args = ", ".join(f"{k}={v}" for k, v in kw.items())
        outputs = tuple(f"p{i}_shape" for i in range(n)) + ("count",) + (("sequential",) if task == "task3_4" else ())
        checks = {}
        if kaiming_init:
            outputs += tuple(f"p{i}" for i in range(n))
            checks = {f"p{i}": kaiming for i in range(0, n, 2)}
        c = draw.case(task, f"{builder}({args}): parameters and initialisation", "model_init",
                      builder=builder, kwargs=kw, outputs=outputs, checks=checks)
        c.tol = INIT_TOL

        dims, kw = _fc_kwargs(draw) if builder == fc else (None, _conv_kwargs(draw))
        shapes = _param_shapes(kw)
        args = ", ".join(f"{k}={v}" for k, v in kw.items())
        N = _odd(draw, 1, 7)
        x_shape = (N, *dims) if builder == fc else (N, kw["in_channel"], kw["height"], kw["width"])
        weights = {f"w{i}": draw.normal(s, "float64", 0.3) for i, s in enumerate(shapes)}
        draw.case(task, f"{builder}({args}) with fixed weights: scores, loss, gradients, one SGD step; "
                  f"batch of {N}", "model_step", builder=builder, kwargs=kw, **weights,
                  x=draw.normal(x_shape, "float64"), y=draw.labels((N,), kw["num_classes"]), lr=0.05,
                  outputs=("scores", "loss", "loss_after") + tuple(f"d{i}" for i in range(len(shapes))))


def _heldout(seed: bytes) -> dict:
    """{dataset: (X float32 as the nets see it, y)}: the whole test split of the patterns and the
    digits; CIFAR-10 (a seeded draw of CIFAR_HELDOUT images) when present."""
    from cs_layers import torch_nets
    from cs_layers.data import get_data

    out = {}
    for name in torch_probes.DATASET_CODES:
        try:
            data = get_data(name)
        except FileNotFoundError:
            continue
        X, y = data["X_test"], np.asarray(data["y_test"], dtype=np.int64)
        if name == "cifar10" and len(X) > CIFAR_HELDOUT:
            digest = hashlib.sha256(bytes(seed) + b"/heldout").digest()
            pick = np.sort(np.random.default_rng(int.from_bytes(digest[:8], "little")).choice(
                len(X), CIFAR_HELDOUT, replace=False))
            X, y = X[pick], y[pick]
        out[name] = (torch_nets.image_tensors(X, float(data["X_train"].std())).numpy(), y)
    return out


def _task3_5(draw: Draw, seed: bytes, heldout=None):
    heldout = heldout if heldout is not None else _heldout(seed)
    empty = np.zeros((0, 3, 32, 32), np.float32)
    images = {f"X_{name}": heldout[name][0] if name in heldout else empty for name in torch_probes.DATASET_CODES}
    c = draw.case(CHALLENGE_TASK, "challenge_model + challenge_model.pt on held-out test images", "challenge",
                  cls=ChallengeCase, **images, weights_file=str(STAGED_WEIGHTS),
                  max_params=course.MAX_CHALLENGE_PARAMS, checks={"logits": logits_ok, "dataset": code_ok})
    c.labels = {name: heldout[name][1] for name in torch_probes.DATASET_CODES if name in heldout}
    most = max([len(v) for v in c.labels.values()] + [1])
    c.expected = {"logits": np.zeros((most, 10)), "dataset": np.zeros(1)}  # sizes only


def build_suite(seed: bytes, tasks=None, *, heldout=None) -> Suite:
    """The PyTorch cases (task3_1..task3_5, or `tasks`) with their expected outputs.

    heldout: optional {dataset: (X, y)} for the challenge instead of the test splits (tests).
    """
    tasks = list(tasks or TORCH_TASKS)
    draw = Draw(torch_probes.PROBES, prefix="t", probe_file="torch_probes")
    builders = {
        "task3_1": _task3_1, "task3_2": _task3_2,
        "task3_3": lambda d: _model_cases(d, "task3_3", "TwoLayerFC", "ThreeLayerConvNet", True),
        "task3_4": lambda d: _model_cases(d, "task3_4", "sequential_fc", "sequential_convnet", False),
        "task3_5": lambda d: _task3_5(d, seed, heldout),
    }
    for task in TORCH_TASKS:
        if task in tasks:
            draw.use_stream(seed, task)
            builders[task](draw)
    import torch

    for case in draw.cases:
        if isinstance(case, ChallengeCase):
            continue
        torch.manual_seed(0)
        case.expected = reference_outputs(case, torch_probes.PROBES)
        for name, check in case.checks.items():  # the init target: sqrt(2 / fan_in)
            if check is kaiming:
                shape = case.expected[name].shape
                fan_in = shape[0] if (len(shape) == 2 and case.task in ("task3_1", "task3_2")) \
                    else int(np.prod(shape[1:]))
                case.expected[name] = np.full(shape, np.sqrt(2.0 / fan_in))
    return Suite(draw.cases, {t: TASK_POINTS[t] for t in tasks})


# ---------------------------------------------------------------- grading one student
def stage_weights(student_dir: Path, workdir: Path, *, max_bytes: int = course.MAX_MODEL_BYTES
                  ) -> TaskResult | None:
    """Copy the challenge weights to WORKDIR/STAGED_WEIGHTS (read-only), or say why not."""
    points = TASK_POINTS[CHALLENGE_TASK]
    src = Path(student_dir) / CHALLENGE_FILE
    try:
        st = os.lstat(src)
    except OSError:
        return TaskResult(CHALLENGE_TASK, 0.0, points, "missing",
                          f"{CHALLENGE_FILE} is not in the submission; run the challenge cells of "
                          "PyTorch.ipynb, which save it with torch_nets.save_challenge")
    if not stat.S_ISREG(st.st_mode):
        return TaskResult(CHALLENGE_TASK, 0.0, points, "rejected", f"{CHALLENGE_FILE} is not a regular file")
    if st.st_size > max_bytes:
        return TaskResult(CHALLENGE_TASK, 0.0, points, "rejected",
                          f"{CHALLENGE_FILE} is {st.st_size >> 20} MiB (limit {max_bytes >> 20} "
                          "MiB); use a smaller challenge model")
    dest = workdir / STAGED_WEIGHTS
    dest.parent.mkdir(parents=True)
    shutil.copyfile(src, dest, follow_symlinks=False)
    os.chmod(dest, 0o444)
    os.chmod(dest.parent, 0o555)
    return None


def _challenge_result(ran: TaskResult, case: ChallengeCase, workdir: Path) -> TaskResult:
    """Accuracy from the returned logits, once the worker ran the case and they validated."""
    if ran.status != "passed":
        return ran
    out = workdir / "outputs"
    code, _ = load_output(out / f"{case.id}__dataset.npy", case.expected["dataset"])
    logits, _ = load_output(out / f"{case.id}__logits.npy", case.expected["logits"])
    points = ran.max_score
    if code is None or logits is None:
        return TaskResult(CHALLENGE_TASK, 0.0, points, "rejected", "the challenge outputs changed after validation")
    codes = {float(v): k for k, v in torch_probes.DATASET_CODES.items()}
    dataset = codes.get(float(code[0]))
    if dataset is None:
        return TaskResult(CHALLENGE_TASK, 0.0, points, "rejected", "the challenge named no known dataset")
    if dataset not in case.labels:
        return TaskResult(CHALLENGE_TASK, 0.0, points, "error",
                          f"the weights are for {dataset} and the grading machine has no {dataset} test "
                          "data; instructor: download it (datasets/get_datasets.sh) and regrade")
    y = case.labels[dataset]
    if logits.shape != (len(y), 10):
        return TaskResult(CHALLENGE_TASK, 0.0, points, "rejected",
                          f"logits of shape {logits.shape} for {len(y)} held-out {dataset} images")
    acc = float(np.mean(np.argmax(logits, axis=1) == y))
    target = CHALLENGE_TARGETS[dataset]
    frac = min(1.0, max(0.0, (acc - CHANCE) / (target - CHANCE)))
    return TaskResult(CHALLENGE_TASK, round(points * frac, 4), points,
                      "passed" if acc >= target else "failed",
                      f"held-out {dataset} test accuracy {acc:.3f} on {len(y)} images (full points at "
                      f">= {target:.2f}, none at <= {CHANCE:.2f})", None)


def grade_torch(student_dir: Path, suite: Suite, *, workdir: Path, limits: Limits = TORCH_LIMITS,
                case_wall_s: float = TORCH_CASE_WALL_S,
                deadline: float | None = None) -> list[TaskResult]:
    """One TaskResult per PyTorch task in suite.torch, from one sandboxed torch worker.

    Inputs:
    - student_dir: the unpacked submission (cs_layers/torch_nets.py, assignments/convnets/...)
    - suite: from hidden_tests.build_suite (its .torch part is graded here)
    - workdir: an empty folder for this student only
    - deadline: time.monotonic() by which everything of this student must be done
    """
    tsuite = suite.torch if suite.torch is not None else suite
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    challenge = next((c for c in tsuite.cases if isinstance(c, ChallengeCase)), None)
    staged = stage_weights(student_dir, workdir) if challenge is not None else None
    cases = [c for c in tsuite.cases if not (c is challenge and staged is not None)]
    results = grade_module(student_dir, Suite(cases, tsuite.points), workdir=workdir,
                           limits=limits, case_wall_s=case_wall_s, deadline=deadline) if cases else []
    by_task = {r.task: r for r in results}
    if staged is not None:
        by_task[CHALLENGE_TASK] = staged
    elif challenge is not None and CHALLENGE_TASK in by_task:
        by_task[CHALLENGE_TASK] = _challenge_result(by_task[CHALLENGE_TASK], challenge, workdir)
    return [by_task[t] for t in tsuite.points if t in by_task]
