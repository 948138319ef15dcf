"""Public checks for max_pool_forward_naive / max_pool_backward_naive (task2_4).

The hand-computed 2x2 case, the numerical gradients and the parity with torch, the same for the
fast layers: test_naive_and_fast.py.
"""
import numpy as np
import pytest
import torch.nn.functional as tF
from hypothesis import given

from cs_layers.gradient_check import check_close
from cs_layers.layers import max_pool_backward_naive, max_pool_forward_naive

from strategies import pool_cases

pytestmark = pytest.mark.task2_4

FWD_HINT = ("Usual mistakes: stepping the window by 1 instead of `stride`, or mixing up "
            "pool_height and pool_width for non-square windows.")
BWD_HINT = ("Usual mistakes: sending the gradient to every element of the window instead of only "
            "the max, or overwriting (=) instead of adding (+=) where windows overlap.")


def _torch_pool(p):
    return lambda x: tF.max_pool2d(x, (p["pool_height"], p["pool_width"]), p["stride"])


def test_overlapping_windows_hand_computed():
    x = np.array([[[[1.0, 5.0, 2.0]]]])  # one row, 1x2 windows with stride 1 overlap at the 5
    out, cache = max_pool_forward_naive(x, {"pool_height": 1, "pool_width": 2, "stride": 1})
    check_close(out, np.array([[[[5.0, 5.0]]]]), 0, "pool out (1x2 windows, stride 1)", FWD_HINT)
    dx = max_pool_backward_naive(np.array([[[[1.0, 10.0]]]]), cache)
    check_close(dx, np.array([[[[0.0, 11.0, 0.0]]]]), 0, "pool dx (overlapping windows)", BWD_HINT)


TIE_HINT = ("Ties: when several inputs of a window share the max (windows of zeros after a ReLU "
            "tie all the time), the whole gradient goes to the FIRST of them in row-major order "
            "(scan the window row by row, left to right), as torch does; not to every tied one.")


def test_ties_send_the_gradient_to_the_first_max_in_row_major_order():
    x = np.array([[[[0.0, 0, 2, 1],      # window 1: all zeros (a ReLU output); window 2: 2 ties 2
                    [0, 0, 1, 2],
                    [3, 1, 0, 5],        # window 3: 3 ties 3 (first in row 0); window 4: a single max
                    [0, 3, 0, 0]]]])
    out, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    check_close(out, np.array([[[[0.0, 2], [3, 5]]]]), 0, "pool out (windows with ties)", FWD_HINT)
    dx = max_pool_backward_naive(np.array([[[[1.0, 2], [3, 4]]]]), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 0], expected[0, 0, 0, 2], expected[0, 0, 2, 0], expected[0, 0, 2, 3] = 1, 2, 3, 4
    check_close(dx, expected, 0, "pool dx (windows with ties)", TIE_HINT)


@given(case=pool_cases())
def test_ties_after_relu_match_torch(case, torch_vjp):
    x, pool_param = case
    x = np.maximum(np.round(x * 2), 0)   # small integers, most of them 0: ties in most windows
    dout = np.random.default_rng(0).standard_normal(max_pool_forward_naive(x, pool_param)[0].shape)
    _, cache = max_pool_forward_naive(x, pool_param)
    _, (dx_torch,) = torch_vjp(_torch_pool(pool_param), [x], dout)
    check_close(max_pool_backward_naive(dout, cache), dx_torch, 1e-12, "pool dx vs torch (ties)", TIE_HINT)


def test_forward_cs231n_fixture():
    x = np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    out, _ = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    expected = np.array([  # torch.nn.functional.max_pool2d, float64
        [[[-0.2631578947, -0.2484210526], [-0.2042105263, -0.1894736842]],
         [[-0.1452631579, -0.1305263158], [-0.0863157895, -0.0715789474]],
         [[-0.0273684211, -0.0126315789], [0.0315789474, 0.0463157895]]],
        [[[0.0905263158, 0.1052631579], [0.1494736842, 0.1642105263]],
         [[0.2084210526, 0.2231578947], [0.2673684211, 0.2821052632]],
         [[0.3263157895, 0.3410526316], [0.3852631579, 0.4000000000]]]])
    check_close(out, expected, 1e-8, "pool out (CS231n fixture)", FWD_HINT)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=pool_cases())
def test_shape_dtype_and_no_mutation(dtype, case):
    x, pool_param = case
    x = x.astype(dtype)
    x_copy, param_copy = x.copy(), dict(pool_param)
    out, cache = max_pool_forward_naive(x, pool_param)
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    expected_shape = (x.shape[0], x.shape[1], 1 + (x.shape[2] - ph) // s, 1 + (x.shape[3] - pw) // s)
    assert out.shape == expected_shape, (
        f"out has shape {out.shape}, expected {expected_shape} with H_out = 1 + (H - pool_height) // stride")
    assert out.dtype == dtype, f"{dtype.__name__} input gave {out.dtype} output; keep the input dtype"
    dx = max_pool_backward_naive(np.ones_like(out), cache)
    assert dx.shape == x.shape and dx.dtype == dtype, f"dx: {dx.shape} {dx.dtype}, expected {x.shape} {dtype}"
    assert np.array_equal(x, x_copy) and pool_param == param_copy, "an input was modified in place"


@given(case=pool_cases())
def test_gradient_is_routed_not_created(case):
    x, pool_param = case
    out, cache = max_pool_forward_naive(x, pool_param)
    out_shifted, _ = max_pool_forward_naive(3.0 * x + 1.0, pool_param)
    check_close(out_shifted, 3.0 * out + 1.0, 1e-12, "pool(3x + 1) vs 3 pool(x) + 1",
                "max pooling commutes with increasing affine maps; take the max, not a sum or mean")
    dout = np.random.default_rng(0).standard_normal(out.shape)
    dx = max_pool_backward_naive(dout, cache)
    check_close(np.array(dx.sum()), np.array(dout.sum()), 1e-9, "sum(dx) vs sum(dout)",
                "every output's gradient must go to exactly one input element", scale=np.abs(dout).sum())
