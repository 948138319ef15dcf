"""Numerical gradients and comparisons with diagnostics.

Everything a student-facing check needs:
- `relative_error(received, expected, scale)`: THE relative error of this course, per
  element: |received - expected| / max(max |expected|, scale, 1e-8). The public checks,
  `python -m cs_layers.check`, the notebooks, the hidden tests and the feedback all use it,
  so a check and a grade never disagree on what "relative error 3e-07" means;
- `rel_error(x, y)`: its largest element, y being the expected value;
- `eval_numerical_gradient(f, x)`: central differences of a scalar function;
- `eval_numerical_gradient_array(f, x, df)`: central differences of an array
  function, contracted with the upstream gradient `df`;
- `grad_check_sparse(f, x, analytic_grad)`: spot-check a few random elements;
- `check_close(received, expected, tol, name, hint)`: the assertion every check
  uses. On failure it names the worst element, the received and expected values
  there, the relative error against the tolerance, and a hint.
"""
import numpy as np


def relative_error(received, expected, scale=None):
    """Per element: |received - expected| / max(max |expected|, scale, 1e-8) (float64 array).

    Errors are relative to the largest expected value, so an element that is nearly zero is
    not held to an impossible relative tolerance. `scale` (a scalar, or the shape of
    `expected`) raises the denominator where a value is a sum whose terms cancel: pass the
    sum of the absolute values of its terms.
    """
    received = np.asarray(received, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    denom = max(1e-8, float(np.max(np.abs(expected), initial=0.0)))
    if scale is not None:
        denom = np.maximum(denom, np.asarray(scale, dtype=np.float64))
    return np.abs(received - expected) / denom


def rel_error(x, y):
    """The largest relative error of x against the expected y (see relative_error)."""
    return float(np.max(relative_error(x, y), initial=0.0))


def check_close(received, expected, tol, name="value", hint="", scale=None):
    """Assert that `received` matches `expected` to relative error `tol` (see relative_error).

    For a value computed as a sum, pass as `scale` the sum of the absolute values
    of its terms (same shape, or a scalar): rounding errors are relative to that.

    Returns the relative error when the check passes. Raises AssertionError
    with a diagnostic when shapes differ, when `received` is not finite, or when
    the worst element's relative error exceeds `tol`.
    """
    if received is None:
        raise AssertionError(f"{name}: received None; the function must return an array. {hint}".strip())
    received = np.asarray(received)
    expected = np.asarray(expected)
    if received.shape != expected.shape:
        raise AssertionError(
            f"{name}: shape {received.shape} received, {expected.shape} expected. {hint}".strip())
    if received.dtype == object or not np.all(np.isfinite(received.astype(np.float64))):
        raise AssertionError(f"{name}: received contains NaN, inf or non-numbers. {hint}".strip())
    if received.size == 0:
        return 0.0
    scale = None if scale is None else np.broadcast_to(np.asarray(scale, dtype=np.float64), expected.shape)
    errors = np.broadcast_to(relative_error(received, expected, scale), expected.shape)
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape)
    err = float(errors[worst])
    if not err <= tol:
        raise AssertionError(
            f"{name}: relative error {err:.3e} > tolerance {tol:.0e}; "
            f"worst element at index {tuple(int(i) for i in worst)}: "
            f"received {received[worst]!r}, expected {expected[worst]!r}. {hint}".strip())
    return err


def _difference(f, x, ix, h):
    """f(x + h at ix) - f(x - h at ix) as float64 (a scalar or an array); x is restored in place."""
    old = x[ix]
    x[ix] = old + h
    pos = np.array(f(x), dtype=np.float64, copy=True)
    x[ix] = old - h
    neg = np.array(f(x), dtype=np.float64, copy=True)
    x[ix] = old
    return pos - neg


def eval_numerical_gradient(f, x, verbose=False, h=1e-5):
    """Central-difference gradient of a scalar function f at x.

    Inputs:
    - f: function taking one array and returning a scalar
    - x: array to evaluate the gradient at; it is perturbed and restored in place
    - h: step size
    Returns grad, an array of the same shape as x.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        grad[ix] = _difference(f, x, ix, h) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Central-difference gradient of sum(f(x) * df) with respect to x.

    Inputs:
    - f: function taking one array and returning an array
    - x: array to evaluate at; perturbed and restored in place
    - df: upstream gradient, same shape as f(x)
    Returns grad, an array of the same shape as x.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        grad[it.multi_index] = np.sum(_difference(f, x, it.multi_index, h) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, tol=1e-6, seed=0, name="gradient"):
    """Compare `analytic_grad` with central differences at `num_checks` random elements.

    Returns the worst relative error seen. Raises AssertionError naming the
    worst element when it exceeds `tol`.
    """
    rng = np.random.default_rng(seed)
    indices = [tuple(int(rng.integers(m)) for m in x.shape) for _ in range(num_checks)]
    numeric = np.empty(num_checks)
    analytic = np.empty(num_checks)
    for k, ix in enumerate(indices):
        numeric[k] = _difference(f, x, ix, h) / (2 * h)
        analytic[k] = analytic_grad[ix]
    errors = relative_error(analytic, numeric)
    k = int(np.argmax(errors))
    if not errors[k] <= tol:
        raise AssertionError(
            f"{name}: relative error {errors[k]:.3e} > tolerance {tol:.0e} at index {indices[k]}: "
            f"analytic {analytic[k]!r}, numerical {numeric[k]!r}")
    return float(errors[k])
