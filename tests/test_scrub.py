"""Feedback never shows hidden inputs, whatever the student's code raises or prints.

Unit tests of grading/scrub.py, then the real grader (sandboxed worker, hidden suite) on a
submission whose code echoes its inputs in every way it can: the exception message
(repr, tolist, a single value, hex bytes), the exception class name, and stdout.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grading import scrub

from session import seed_template

REPO = Path(__file__).resolve().parent.parent
X = np.random.default_rng(7).standard_normal((2, 3, 4))


def _leaks(text: str, arrays) -> list[float]:
    """Values of `arrays` that appear in `text` (to 4 significant digits or more)."""
    found = []
    for arr in arrays:
        for v in np.asarray(arr, dtype=np.float64).ravel()[:200]:
            if abs(v) < 1e-3 or float(v).is_integer():
                continue
            for form in (f"{v:.4g}", f"{v:.4f}", repr(float(v))[:6], f"{v:.3e}"):
                # only forms that carry 4 significant digits: "1.6" (1.6004 to .4g) also
                # matches an unrelated "1.6e-05" in a message
                if len(re.sub(r"\D", "", form.split("e")[0]).lstrip("0")) >= 4 and re.search(
                        r"(?<![\d.])" + re.escape(form) + r"(?!\d)", text):
                    found.append(float(v))
                    break
    return found


@pytest.mark.parametrize("message", [
    f"ValueError at cs_layers/layers.py:12: {X!r}",
    f"ValueError at cs_layers/layers.py:12: {X.tolist()}",
    f"KeyError: {X.ravel().tolist()!s}",
    f"ValueError: {float(X[0, 0, 0])}",
    f"ValueError: {X[0, 0, 0]:.3e} and {X[1, 2, 3]:.12f}",
    f"RuntimeError: {X.tobytes().hex()}",
    f"RuntimeError: {int(abs(X[0, 0, 0]) * 1e9)}",
    f"V_{str(X[0, 0, 0]).replace('.', '_').replace('-', 'm')} at cs_layers/cnn.py:3: boom",
    "out is a ndarray_" + str(abs(X[0, 0, 1]))[2:10] + ", not a numeric array",
])
def test_no_input_value_survives(message):
    safe = scrub.worker_message(message)
    assert not _leaks(safe, [X]), f"{message[:60]!r} -> {safe!r}"
    assert len(safe) <= scrub.MAX_CHARS + 40


def test_type_place_and_useful_words_are_kept():
    msg = "IndexError at cs_layers/fast_layers.py:88: index 5 is out of bounds for axis 0 with size 5"
    assert scrub.worker_message(msg) == msg
    msg = "ValueError at cs_layers/layers.py:7: operands could not be broadcast together " \
          "with shapes (2,3,4) (2,3)"
    assert scrub.worker_message(msg) == msg
    assert scrub.worker_message("NotImplementedError at cs_layers/layers.py:40: Need to "
                                "implement for task2_3") == \
        "NotImplementedError at cs_layers/layers.py:40: Need to implement for task2_3"


def test_own_exception_classes_become_exception_and_text_is_ascii():
    assert scrub.worker_message("Leak123 at cs_layers/cnn.py:3: hi") == \
        "Exception at cs_layers/cnn.py:3: hi"
    assert scrub.exception_type("AxisError") == "AxisError"
    assert scrub.text("caf\u00e9\x00\x1b[2J") == "caf [2J"  # no escapes, no non-ASCII


def test_long_messages_are_cut():
    assert len(scrub.text("word " * 1000)) == scrub.MAX_CHARS


# ---------------------------------------------------------------- the real grader

ECHO = '''
import sys as _sys


class _Leak(Exception):
    pass


def _echo(func, how):
    orig = func

    def wrapped(*args, **kwargs):
        x = args[0]
        print("INPUT", x.tolist(), file=_sys.stdout)  # stdout: never shown
        print("INPUT", repr(x), file=_sys.stderr)
        if how == "repr":
            raise ValueError(repr(x))
        if how == "list":
            raise RuntimeError(str(x.tolist()))
        if how == "one":
            raise KeyError(float(x.ravel()[0]), float(x.ravel()[-1]))
        if how == "class":
            raise type("L_" + str(abs(float(x.ravel()[0]))).replace(".", "_"), (_Leak,), {})("x")
        if how == "hex":
            raise ValueError(x.tobytes()[:64].hex())
        return orig(*args, **kwargs)
    return wrapped


relu_forward = _echo(relu_forward, "repr")
conv_forward_naive = _echo(conv_forward_naive, "list")
max_pool_forward_naive = _echo(max_pool_forward_naive, "one")
spatial_batchnorm_forward = _echo(spatial_batchnorm_forward, "class")
spatial_groupnorm_forward = _echo(spatial_groupnorm_forward, "hex")
'''


@pytest.mark.slow
def test_a_submission_echoing_its_inputs_leaks_nothing_anywhere(tmp_path, tmp_path_factory):
    from grading.examples import append_patch, copy_reference
    from grading.hidden_tests import build_suite

    subs, out = tmp_path / "subs", tmp_path / "out"
    seed_template(tmp_path_factory, out)
    copy_reference(subs / "echo")
    append_patch(subs / "echo", "layers.py", ECHO)
    seed = tmp_path / "seed"
    seed.write_bytes(bytes(range(32)))
    proc = subprocess.run([sys.executable, "-m", "grading", "autograde", str(subs), "--out",
                           str(out), "--quiet", "--jobs", "1", "--seed-file", str(seed)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rec = json.loads((out / "results" / "echo.json").read_text())
    status = {r["task"]: r["status"] for r in rec["results"]}
    assert status["task2_1"] == "error", status  # relu_forward raised
    assert status["task2_2"] == "error", status  # conv_forward_naive raised
    messages = " ".join(r["message"] for r in rec["results"])
    assert "ValueError" in messages and "RuntimeError" in messages, messages

    suite = build_suite(bytes(range(32)))
    arrays = [a for c in suite.cases for a in list(c.arrays.values()) + list(c.expected.values())
              if np.asarray(a).dtype.kind == "f"]
    with open(out / "grades.csv", newline="") as f:
        grades = "\n".join(",".join(r) for r in csv.reader(f))
    # the grader's own measurements (wall time to the millisecond, clock, memory peaks) differ
    # on every run, and a value such as "duration_s": 6.218 matches a hidden 6.2184... by
    # chance; everything else in the record is fixed by the seed and scanned
    measured = {k: rec.pop(k) for k in ("graded_at", "duration_s", "usage")}
    assert isinstance(measured["duration_s"], float), measured
    shown = {"feedback": (out / "feedback" / "echo.html").read_text(),
             "results": json.dumps(rec, indent=1), "grades.csv": grades}
    for name, text in shown.items():
        leaked = _leaks(text, arrays)
        assert not leaked, f"hidden values in {name}: {leaked[:5]}"
        assert "INPUT" not in text, f"the student's output reached {name}"

    from grading.gradescope import to_results_json
    from grading.results import TaskResult
    payload = json.dumps(to_results_json([TaskResult.from_dict(r) for r in rec["results"]]))
    assert not _leaks(payload, arrays), "hidden values in Gradescope's results.json"
    print(json.dumps({r["task"]: r["message"] for r in rec["results"]}, indent=1))
    shutil.rmtree(out)


def test_raw_bytes_in_hex_or_base64_are_redacted():
    import base64

    raw = X.tobytes()
    for encoded in (raw.hex(), base64.b64encode(raw).decode(), raw[:8].hex()):
        safe = scrub.worker_message(f"ValueError at cs_layers/layers.py:3: {encoded}")
        assert safe == "ValueError at cs_layers/layers.py:3: ...", safe
