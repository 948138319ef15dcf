"""Verdicts: what the worker left behind, checked as data, turned into points and feedback.

Grader side. Nothing the sandboxed user writes is trusted: a status file is read through
grading.safeio (bounded, no FIFO or link), an output through safeio.load_npy (regular file,
bounded size, no pickle), and every array is compared with the reference here. Messages
name shapes, dtypes, relative errors and indices, never values.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cs_layers.gradient_check import relative_error
from grading import safeio, scrub
from grading.results import TaskResult

MAX_STATUS_BYTES = 8192  # a worker status file larger than this is the submission's fault
SEVERITY = ("timeout", "memory", "error", "rejected", "failed", "missing")  # when a task's cases differ


def compare(received: np.ndarray, expected: np.ndarray, tol: float) -> tuple[bool, str]:
    """(ok, message) for one output; the message never shows values."""
    if received.dtype.kind != "f":
        return False, f"returned dtype {received.dtype}; return a floating-point array"
    if received.shape != expected.shape:
        return False, f"returned shape {received.shape}, expected {expected.shape}"
    if not np.all(np.isfinite(received)):
        bad = int(np.size(received) - np.count_nonzero(np.isfinite(received)))
        return False, f"contains {bad} NaN/inf values"
    errors = relative_error(received, expected)  # the public checks' definition
    err = float(np.max(errors, initial=0.0))
    if err <= tol:
        return True, ""
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape) if errors.ndim else ()
    where = f" (worst element at index {tuple(int(i) for i in worst)})" if worst else ""
    return False, f"relative error {err:.1e} > {tol:.0e}{where}"


def exact(received: np.ndarray, expected: np.ndarray, tol: float) -> tuple[bool, str]:
    """(ok, message) for an integer output (a size or a count): it must be exactly right."""
    if received.dtype.kind not in "iu":
        return False, f"returned dtype {received.dtype}; return a Python int"
    if received.shape != expected.shape:
        return False, f"returned shape {received.shape}, expected {expected.shape}"
    if not np.array_equal(received.astype(np.float64), expected):
        return False, "not the exact integer (sizes and counts allow no rounding)"
    return True, ""


def read_status(path: Path) -> dict | None:
    """A small status file written by the worker (untrusted): dict, or None when absent.

    Read through grading.safeio: a FIFO, device, link, huge or deeply nested file is an
    "error" that blames the submission, and never blocks or crashes the grader.
    """
    try:
        data = safeio.load_json(path, MAX_STATUS_BYTES)
    except safeio.Unsafe as err:
        if not os.path.lexists(path):
            return None
        return {"kind": "error", "message": f"the worker's status file is unusable: {err} "
                                           "(did your code write into outputs/?)"}
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return {"kind": "error", "message": "the worker wrote an unreadable status "
                                            "(did your code write into outputs/?)"}
    msg = data.get("message", "")
    return {"kind": data["kind"][:40], "message": msg[:400] if isinstance(msg, str) else ""}


def load_output(path: Path, expected: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Load a worker output as data: regular file, bounded size, no pickle, never blocks."""
    if not os.path.lexists(path):
        return None, "no output was written"
    try:
        return safeio.load_npy(path, 16 * expected.size + 4096), ""
    except safeio.Unsafe as err:
        return None, str(err)


def check_case(case, out_dir: Path, status: dict) -> tuple[str, str]:
    """(status, message) of one finished case, from the arrays alone."""
    kind = status["kind"]
    said = scrub.worker_message(status["message"])  # the student's text: never trusted raw
    if kind == "missing":
        return "missing", f"not implemented yet ({said})"
    if kind in ("error", "memory", "rejected"):
        return kind, said or kind
    if kind != "ok":
        return "error", f"the worker reported an unknown status {kind[:20]!r}"
    problems = []
    for name, exp in case.expected.items():
        arr, why = load_output(out_dir / f"{case.id}__{name}.npy", exp)
        if arr is None:
            return "rejected", f"{name}: {why}"
        if name.endswith("_shape"):
            if arr.dtype.kind not in "iu" or arr.shape != exp.shape or not np.array_equal(arr, exp):
                shape = tuple(arr.tolist()) if arr.ndim == 1 and arr.size < 8 else "?"
                problems.append(f"{name[5:-6]} has shape {shape}, expected {tuple(int(v) for v in exp)}")
            continue
        ok, why = case.checks.get(name, compare)(arr, exp, case.tol)
        if not ok:
            problems.append(f"{name}: {why}")
    if problems:
        return "failed", "; ".join(problems[:3])
    return "passed", ""


def task_result(task: str, cases: list, points: float, verdicts: dict) -> TaskResult:
    """The TaskResult of one task: points in proportion to its passed cases, the worst status,
    and up to four failed cases by label."""
    tol = max(c.tol for c in cases)
    passed = sum(verdicts[c.id][0] == "passed" for c in cases)
    score = points * passed / len(cases)
    if passed == len(cases):
        return TaskResult(task, points, points, "passed",
                          f"all {len(cases)} hidden cases passed", tol)
    bad = [(verdicts[c.id], c) for c in cases if verdicts[c.id][0] != "passed"]
    status = min((v[0] for v, _ in bad), key=SEVERITY.index)
    lines = [f"{passed}/{len(cases)} hidden cases passed."]
    for (st, msg), c in bad[:4]:
        lines.append(f"[{st}] {c.label}: {msg}")
    if len(bad) > 4:
        lines.append(f"... and {len(bad) - 4} more")
    return TaskResult(task, score, points, status, "\n".join(lines), tol)
