"""One of each: the relative error, the central difference, the argument checks and the
notebook integrity check have one definition, and every side that uses them agrees."""
import copy
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cs_layers import course, gradient_check, layers, notebook_cells, submit
from grading import hidden_tests, notebooks

ROOT = Path(__file__).resolve().parent.parent
_floats = st.floats(-10, 10, allow_nan=False, width=64)


@given(hnp.arrays(np.float64, st.integers(1, 6), elements=_floats),
       st.floats(0, 1e-3), st.sampled_from([1e-7, 1e-4, 1e-2]))
def test_public_check_and_hidden_test_agree_on_the_relative_error(expected, noise, tol):
    received = expected + noise * np.sign(np.sin(np.arange(expected.size)))
    ok, message = hidden_tests.compare(received, expected, tol)
    try:
        err = gradient_check.check_close(received, expected, tol)
        passed = True
    except AssertionError:
        passed = False
    assert ok == passed, message
    assert passed or f"> {tol:.0e}" in message
    if passed:
        assert err == gradient_check.rel_error(received, expected)


def test_relative_error_is_relative_to_the_largest_expected_value():
    errors = gradient_check.relative_error([1.0, 0.0], [2.0, 1e-12])
    assert errors.tolist() == [0.5, pytest.approx(0.5e-12)]  # the tiny element is not blown up


def test_one_central_difference():
    source = inspect.getsource(gradient_check)
    assert source.count("old + h") == 1 and source.count("old - h") == 1
    x = np.array([1.0, 2.0])
    assert np.allclose(gradient_check.eval_numerical_gradient(lambda v: float(np.sum(v ** 3)), x), 3 * x ** 2)


def test_layers_hold_no_argument_check_of_their_own():
    assert "raise ValueError" not in inspect.getsource(layers), "argument checks belong in shapes.py"


# ---------------------------------------------------------------- notebook integrity
NB = ROOT / course.NOTEBOOK_DIR / f"{course.NOTEBOOKS[0]}.ipynb"


def _checked_ids(nb):
    return [gid for gid, e in notebook_cells.manifest(nb).items() if notebook_cells.checked(e)]


def _mutations(nb):
    gid = _checked_ids(nb)[0]
    idx = next(i for i, c in enumerate(nb["cells"])
               if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid)
    deleted = copy.deepcopy(nb)
    del deleted["cells"][idx]
    edited = copy.deepcopy(nb)
    edited["cells"][idx]["source"] = "assert True\n"
    duplicated = copy.deepcopy(nb)
    duplicated["cells"].insert(idx, copy.deepcopy(nb["cells"][idx]))
    return {"untouched": nb, "deleted": deleted, "edited": edited, "duplicated": duplicated}


@pytest.mark.parametrize("what", ["untouched", "deleted", "edited", "duplicated"])
def test_submit_and_grader_agree_on_a_notebook(what, tmp_path):
    nb = json.loads(NB.read_text(encoding="utf-8"))
    manifest = notebook_cells.manifest(nb)
    raw = json.dumps(_mutations(nb)[what]).encode()
    problems, _ = submit.check_notebook(tmp_path, "nb.ipynb", manifest, data=raw)
    rejected = notebooks.check_notebook(raw, notebooks.read_cells(NB))
    assert bool(problems) == (rejected is not None) == (what != "untouched"), (problems, rejected)
    if what != "untouched":
        assert what in problems[0] or (what == "duplicated" and "twice" in problems[0])
