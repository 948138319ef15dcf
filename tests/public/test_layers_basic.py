"""Public checks for the building blocks (task2_1): affine, relu, softmax_loss."""
import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from hypothesis import given
from hypothesis import strategies as st

from cs_layers.gradient_check import check_close, eval_numerical_gradient, eval_numerical_gradient_array
from cs_layers.layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss

pytestmark = pytest.mark.task2_1

AFFINE_HINT = "Usual mistake: not flattening x to (N, D) first, or not reshaping dx back to x.shape."
SOFTMAX_HINT = ("Usual mistakes: forgetting to average over the batch (divide by N), or computing "
                "exp without subtracting the row max.")


def test_affine_hand_computed():
    x = np.array([[[1.0, 2.0]], [[3.0, 4.0]]])  # (2, 1, 2) flattens to (2, 2)
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = np.array([0.5, 0.0, 1.0])
    out, cache = affine_forward(x, w, b)
    check_close(out, np.array([[1 + 4 + 0.5, 2, -1 + 1], [3 + 8 + 0.5, 4, -3 + 1]]), 1e-12, "affine out",
                AFFINE_HINT)
    dx, dw, db = affine_backward(np.ones((2, 3)), cache)
    check_close(dx, np.array([[[0.0, 3.0]], [[0.0, 3.0]]]), 1e-12, "affine dx", AFFINE_HINT)
    check_close(dw, np.array([[4.0, 4, 4], [6, 6, 6]]), 1e-12, "affine dw", "dw = x_flat.T @ dout")
    check_close(db, np.array([2.0, 2, 2]), 1e-12, "affine db", "db sums dout over the batch")


def test_relu_hand_computed():
    x = np.array([[-1.0, 0.0, 2.0]])
    out, cache = relu_forward(x)
    check_close(out, np.array([[0.0, 0.0, 2.0]]), 0, "relu out", "relu(x) = max(0, x)")
    check_close(relu_backward(np.array([[5.0, 5.0, 5.0]]), cache), np.array([[0.0, 0.0, 5.0]]), 0,
                "relu dx", "the gradient passes only where the input was positive")


def test_softmax_loss_hand_computed():
    loss, dx = softmax_loss(np.zeros((2, 4)), np.array([0, 3]))
    assert abs(loss - np.log(4)) < 1e-12, f"uniform scores over 4 classes give loss log(4), got {loss}"
    check_close(dx, np.array([[-0.375, 0.125, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]]), 1e-12,
                "softmax dx", SOFTMAX_HINT)


@given(n=st.integers(1, 4), dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       m=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_affine_matches_torch(n, dims, m, seed, torch_vjp, term_scale):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *dims))
    w, b = rng.standard_normal((int(np.prod(dims)), m)), rng.standard_normal(m)
    out, cache = affine_forward(x, w, b)
    dout = rng.standard_normal((n, m))
    grads = affine_backward(dout, cache)
    expected, expected_grads = torch_vjp(lambda x, w, b: x.reshape(n, -1) @ w + b, [x, w, b], dout)
    scale, scales = term_scale(lambda x, w, b: x.reshape(n, -1) @ w + b, [x, w, b], dout)
    check_close(out, expected, 1e-9, "affine out vs torch", AFFINE_HINT, scale=scale)
    for name, g, e, sc in zip(("dx", "dw", "db"), grads, expected_grads, scales):
        check_close(g, e, 1e-9, f"affine {name} vs torch autograd", AFFINE_HINT, scale=sc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_no_mutation(dtype):
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((3, 2, 2), (4, 5), (5,)))
    y = np.array([0, 4, 2])
    copies = [a.copy() for a in (x, w, b, y)]
    out, cache = affine_forward(x, w, b)
    grads = affine_backward(np.ones_like(out), cache)
    r, rcache = relu_forward(out)
    dr = relu_backward(np.ones_like(r), rcache)
    loss, dscores = softmax_loss(out, y)
    for name, a in (("affine out", out), ("dx", grads[0]), ("dw", grads[1]), ("db", grads[2]),
                    ("relu out", r), ("relu dx", dr), ("softmax dx", dscores)):
        assert a.dtype == dtype, f"{name} is {a.dtype} for {dtype.__name__} inputs; keep the input dtype"
    assert isinstance(loss, float), f"softmax_loss must return the loss as a Python float, got {type(loss)}"
    for a, c in zip((x, w, b, y), copies):
        assert np.array_equal(a, c), "an input was modified in place"


def test_relu_and_softmax_match_torch(torch_vjp):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 7))
    dout = rng.standard_normal((6, 7))
    out, cache = relu_forward(x)
    expected, (expected_dx,) = torch_vjp(tF.relu, [x], dout)
    check_close(out, expected, 0, "relu out vs torch", "relu(x) = max(0, x)")
    check_close(relu_backward(dout, cache), expected_dx, 0, "relu dx vs torch",
                "the upstream gradient passes where the input was positive, 0 elsewhere")
    y = rng.integers(0, 7, size=6)
    loss, dx = softmax_loss(100 * x, y)  # large scores: only a stable softmax survives
    expected_loss, (expected_dx,) = torch_vjp(
        lambda s: tF.cross_entropy(s, torch.tensor(y)), [100 * x], 1.0)
    check_close(np.array(loss), expected_loss, 1e-9, "softmax loss vs torch cross_entropy", SOFTMAX_HINT)
    check_close(dx, expected_dx, 1e-9, "softmax dx vs torch autograd", SOFTMAX_HINT)


def test_numerical_gradients():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    out, cache = affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    for name, arr, grad in zip(("dx", "dw", "db"), (x, w, b), affine_backward(dout, cache)):
        num = eval_numerical_gradient_array(lambda _: affine_forward(x, w, b)[0], arr, dout)
        check_close(grad, num, 1e-8, f"affine {name} vs central differences", AFFINE_HINT)
    z = rng.standard_normal((5, 6))
    z[np.abs(z) < 1e-3] = 0.5  # keep away from the kink at 0
    dz = rng.standard_normal(z.shape)
    num = eval_numerical_gradient_array(lambda v: relu_forward(v)[0], z, dz)
    check_close(relu_backward(dz, relu_forward(z)[1]), num, 1e-8, "relu dx vs central differences",
                "the upstream gradient passes only where the forward input was positive")
    s, y = rng.standard_normal((7, 4)), rng.integers(0, 4, size=7)
    num = eval_numerical_gradient(lambda v: softmax_loss(v, y)[0], s)
    check_close(softmax_loss(s, y)[1], num, 1e-7, "softmax dx vs central differences", SOFTMAX_HINT)
