"""Public checks for conv_forward_naive (task2_2) and conv_backward_naive (task2_3).

The hand-computed backward case, the numerical gradients and the parity with torch (forward and
backward), the same for the fast layers: test_naive_and_fast.py.
"""
import numpy as np
import pytest
import torch.nn.functional as tF
from hypothesis import given

from cs_layers.gradient_check import check_close
from cs_layers.layers import conv_backward_naive, conv_forward_naive

from strategies import conv_cases

FWD_HINT = ("Usual mistakes: not padding x with `pad` zeros on each side, stepping the window by 1 "
            "instead of `stride`, or forgetting to add b[f].")


def _torch_conv(conv_param):
    return lambda x, w, b: tF.conv2d(x, w, b, stride=conv_param["stride"], padding=conv_param["pad"])


# ---------------------------------------------------------------- task2_2: forward

@pytest.mark.task2_2
def test_forward_hand_computed():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = np.array([1.0])
    out, _ = conv_forward_naive(x, w, b, {"stride": 1, "pad": 0})
    expected = np.array([[[[0*1 + 1*2 + 3*3 + 4*4 + 1, 1*1 + 2*2 + 4*3 + 5*4 + 1],
                           [3*1 + 4*2 + 6*3 + 7*4 + 1, 4*1 + 5*2 + 7*3 + 8*4 + 1]]]])
    check_close(out, expected, 1e-12, "conv out (3x3 input, 2x2 kernel)", FWD_HINT)


@pytest.mark.task2_2
def test_forward_hand_computed_padding():
    x = np.full((1, 1, 1, 1), 5.0)
    w = np.ones((1, 1, 3, 3))
    out, _ = conv_forward_naive(x, w, np.array([0.5]), {"stride": 1, "pad": 1})
    check_close(out, np.array([[[[5.5]]]]), 1e-12, "conv out (1x1 input, 3x3 kernel, pad 1)",
                "With pad=1 only the centre of the kernel meets x; the padding must be zeros.")


@pytest.mark.task2_2
def test_forward_cs231n_fixture():
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    expected = np.array([  # torch.nn.functional.conv2d, float64
        [[[-0.0875980861, -0.1098778064], [-0.1838719176, -0.2109216047]],
         [[0.2102708870, 0.2166109680], [0.2284762606, 0.2300463747]],
         [[0.5081398601, 0.5430997424], [0.6408244387, 0.6710143541]]],
        [[[-0.9805358852, -1.0314354067], [-1.1912889216, -1.2469584100]],
         [[0.6910835480, 0.6688038278], [0.5948097166, 0.5677600294]],
         [[2.3627029812, 2.3690430622], [2.3809083548, 2.3824784689]]]])
    check_close(out, expected, 1e-8, "conv out (CS231n fixture, stride 2, pad 1)", FWD_HINT)


@pytest.mark.task2_2
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=conv_cases())
def test_forward_shape_dtype_and_no_mutation(dtype, case):
    x, w, b, conv_param = (a.astype(dtype) if isinstance(a, np.ndarray) else a for a in case)
    copies = [x.copy(), w.copy(), b.copy(), dict(conv_param)]
    out, cache = conv_forward_naive(x, w, b, conv_param)
    H_out = 1 + (x.shape[2] + 2 * conv_param["pad"] - w.shape[2]) // conv_param["stride"]
    W_out = 1 + (x.shape[3] + 2 * conv_param["pad"] - w.shape[3]) // conv_param["stride"]
    assert out.shape == (x.shape[0], w.shape[0], H_out, W_out), (
        f"out has shape {out.shape}, expected (N, F, H_out, W_out) = "
        f"{(x.shape[0], w.shape[0], H_out, W_out)} with H_out = 1 + (H + 2*pad - HH) // stride")
    assert out.dtype == dtype, f"{dtype.__name__} inputs gave {out.dtype} output; keep the input dtype"
    for a, c in zip((x, w, b), copies):
        assert np.array_equal(a, c), "an input array was modified in place; pad into a new array"
    assert conv_param == copies[3], "conv_param was modified"
    assert len(cache) == 4 and cache[0] is x and cache[1] is w, "cache must be (x, w, b, conv_param)"


@pytest.mark.task2_2
@given(case=conv_cases())
def test_forward_matches_torch(case, torch_vjp, term_scale):
    x, w, b, conv_param = case
    out, _ = conv_forward_naive(x, w, b, conv_param)
    expected, _ = torch_vjp(_torch_conv(conv_param), [x, w, b])
    scale, _ = term_scale(_torch_conv(conv_param), [x, w, b])
    check_close(out, expected, 1e-9, f"conv out vs torch conv2d ({conv_param})", FWD_HINT, scale=scale)


@pytest.mark.task2_2
@given(case=conv_cases(max_stride=1, max_pad=0))
def test_forward_is_linear_and_commutes_with_cropping(case, term_scale):
    # Each output is a sum of up to C*HH*WW products: rounding differs between the two sides by a few
    # ulps of the sum of |terms| (`scale`), never of the result, which can cancel to nearly zero.
    x, w, b, conv_param = case
    zero_b = np.zeros_like(b)
    scale, _ = term_scale(_torch_conv(conv_param), [x, w, b])
    out1, _ = conv_forward_naive(x, w, zero_b, conv_param)
    out2, _ = conv_forward_naive(2.5 * x, w, zero_b, conv_param)
    check_close(out2, 2.5 * out1, 1e-12, "conv(2.5 x) vs 2.5 conv(x)", "the output must be linear in x",
                scale=2.5 * scale)
    out_b, _ = conv_forward_naive(x, w, b, conv_param)
    check_close(out_b - out1, np.broadcast_to(b[None, :, None, None], out1.shape), 1e-12,
                "conv(x, w, b) - conv(x, w, 0)", "b[f] is added once to every output of filter f", scale=scale)
    if x.shape[3] > w.shape[3]:  # stride 1, pad 0: dropping the first column shifts the output
        out_crop, _ = conv_forward_naive(x[:, :, :, 1:], w, zero_b, conv_param)
        check_close(out_crop, out1[:, :, :, 1:], 1e-12, "conv of x[..., 1:]",
                    "window (i, j) must start at column j * stride of the padded input",
                    scale=scale[:, :, :, 1:])


# ---------------------------------------------------------------- task2_3: backward

@pytest.mark.task2_3
@given(case=conv_cases(dtype=np.float32))
def test_backward_keeps_float32(case):
    x, w, b, conv_param = case
    out, cache = conv_forward_naive(x, w, b, conv_param)
    grads = conv_backward_naive(np.ones_like(out), cache)
    for name, g, a in zip(("dx", "dw", "db"), grads, (x, w, b)):
        assert g.shape == a.shape, f"{name} has shape {g.shape}, expected {a.shape}"
        assert g.dtype == np.float32, f"{name} is {g.dtype} for float32 inputs; keep float32"
