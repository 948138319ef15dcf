"""Public checks for batch norm / spatial batch norm (task2_10) and spatial group norm (task2_11)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from hypothesis import given
from hypothesis import strategies as st

from cs_layers.gradient_check import check_close, eval_numerical_gradient_array
from cs_layers.layers import (
    batchnorm_backward,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

BN_HINT = ("Usual mistakes: using the unbiased variance (ddof=1), normalising over the wrong axis, "
           "or putting eps outside the square root.")
BN_BWD_HINT = ("Usual mistake: forgetting that the batch mean and variance depend on x too "
               "(dx has three terms in train mode).")
SBN_HINT = "Usual mistake: reshaping (N, C, H, W) straight to (-1, C) without moving C last first."
GN_HINT = ("Usual mistakes: grouping the wrong axis (groups are C // G consecutive channels of one "
           "sample), or taking statistics over the batch.")


@st.composite
def spatial_cases(draw, max_groups=3):
    G = draw(st.integers(1, max_groups))
    N, C = draw(st.integers(1, 3)), G * draw(st.integers(1, 3))
    H, W = draw(st.integers(2, 4)), draw(st.integers(2, 4))  # 4+ values per group: with 2, dx is ~0 (pure rounding)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = 2.0 * rng.standard_normal((N, C, H, W)) + rng.standard_normal((1, C, 1, 1))
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    return x, gamma, beta, G


def _norm_scales(torch_vjp, norm, x, dout, reduce_axes):
    """Rounding scales for a normalisation layer: (out and dx, dgamma, dbeta).

    out and dx are formed from values centred and scaled within each group: their rounding errors are
    relative to the largest entry of the array. dgamma and dbeta are sums over reduce_axes of
    dout * x_hat and dout: relative to the sums of the absolute values of those terms.
    """
    x_hat, _ = torch_vjp(norm, [x])
    return (np.abs(dout * x_hat).sum(axis=reduce_axes), np.abs(dout).sum(axis=reduce_axes))


# ---------------------------------------------------------------- task2_10: batch norm

@pytest.mark.task2_10
def test_batchnorm_hand_computed():
    x = np.array([[1.0, 10.0], [3.0, 10.0]])  # column 0: mean 2, var 1; column 1: mean 10, var 0
    bn_param = {"mode": "train", "eps": 1e-12, "momentum": 0.75,
                "running_mean": np.array([0.0, 2.0]), "running_var": np.array([1.0, 1.0])}
    out, _ = batchnorm_forward(x, np.array([2.0, 1.0]), np.array([0.5, 0.0]), bn_param)
    check_close(out, np.array([[-1.5, 0.0], [2.5, 0.0]]), 1e-9, "batchnorm out", BN_HINT)
    check_close(bn_param["running_mean"], np.array([0.5, 4.0]), 1e-12, "running_mean",
                "running = momentum * running + (1 - momentum) * batch statistic")
    check_close(bn_param["running_var"], np.array([1.0, 0.75]), 1e-12, "running_var",
                "running = momentum * running + (1 - momentum) * batch variance (biased)")


@pytest.mark.task2_10
def test_batchnorm_train_statistics_and_test_mode():
    rng = np.random.default_rng(10)
    N, D = 200, 3
    x = 5 + 3 * rng.standard_normal((N, D))
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    bn_param = {"mode": "train"}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    check_close(out.mean(axis=0), beta, 1e-9, "mean of train-mode output", BN_HINT)
    check_close(out.std(axis=0), gamma, 1e-5, "std of train-mode output", BN_HINT)
    for _ in range(60):
        batchnorm_forward(5 + 3 * rng.standard_normal((N, D)), gamma, beta, bn_param)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(5 + 3 * rng.standard_normal((N, D)), gamma, beta, bn_param)
    check_close(out.mean(axis=0), beta, 0.3, "mean of test-mode output (after 60 train steps)",
                "test mode must normalise with running_mean / running_var, updated in every train step")
    check_close(out.std(axis=0), gamma, 0.3, "std of test-mode output (after 60 train steps)",
                "test mode must normalise with running_mean / running_var, updated in every train step")


@pytest.mark.task2_10
@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_matches_torch(mode, torch_vjp):
    rng = np.random.default_rng(11)
    x, gamma, beta = rng.standard_normal((6, 4)) * 2 + 1, rng.standard_normal(4), rng.standard_normal(4)
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    bn_param = {"mode": mode, "eps": 1e-5, "running_mean": rm.copy(), "running_var": rv.copy()}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dout = rng.standard_normal(out.shape)
    grads = batchnorm_backward(dout, cache)

    def ref(x, g, b):
        return tF.batch_norm(x, torch.tensor(rm), torch.tensor(rv), g, b, training=mode == "train", eps=1e-5)
    expected, expected_grads = torch_vjp(ref, [x, gamma, beta], dout)
    check_close(out, expected, 1e-9, f"batchnorm out vs torch ({mode} mode)", BN_HINT)
    for name, g, e in zip(("dx", "dgamma", "dbeta"), grads, expected_grads):
        check_close(g, e, 1e-9, f"batchnorm {name} vs torch autograd ({mode} mode)", BN_BWD_HINT)


@pytest.mark.task2_10
def test_batchnorm_numerical_gradient():
    rng = np.random.default_rng(12)
    x, gamma, beta = rng.standard_normal((5, 4)) * 3 + 2, rng.standard_normal(4), rng.standard_normal(4)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    for name, arr, grad in zip(("dx", "dgamma", "dbeta"), (x, gamma, beta), batchnorm_backward(dout, cache)):
        num = eval_numerical_gradient_array(
            lambda _: batchnorm_forward(x, gamma, beta, {"mode": "train"})[0], arr, dout)
        check_close(grad, num, 1e-7, f"batchnorm {name} vs central differences", BN_BWD_HINT)


@pytest.mark.task2_10
@given(case=spatial_cases(max_groups=1))
def test_spatial_batchnorm_matches_torch(case, torch_vjp):
    x, gamma, beta, _ = case
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = np.random.default_rng(out.size).standard_normal(out.shape)
    grads = spatial_batchnorm_backward(dout, cache)
    expected, expected_grads = torch_vjp(
        lambda x, g, b: tF.batch_norm(x, None, None, g, b, training=True, eps=1e-5), [x, gamma, beta], dout)
    sum_scales = _norm_scales(torch_vjp, lambda x: tF.batch_norm(x, None, None, training=True, eps=1e-5),
                              x, dout, (0, 2, 3))
    check_close(out, expected, 1e-9, "spatial batchnorm out vs torch batch_norm", SBN_HINT,
                scale=np.abs(expected).max())
    for name, g, e, sc in zip(("dx", "dgamma", "dbeta"), grads, expected_grads,
                              (np.abs(expected_grads[0]).max(), *sum_scales)):
        check_close(g, e, 1e-9, f"spatial batchnorm {name} vs torch autograd", SBN_HINT, scale=sc)


@pytest.mark.task2_10
def test_spatial_batchnorm_numerical_gradient():
    rng = np.random.default_rng(13)
    x, gamma, beta = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal(3), rng.standard_normal(3)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    for name, arr, grad in zip(("dx", "dgamma", "dbeta"), (x, gamma, beta),
                               spatial_batchnorm_backward(dout, cache)):
        num = eval_numerical_gradient_array(
            lambda _: spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})[0], arr, dout)
        check_close(grad, num, 1e-7, f"spatial batchnorm {name} vs central differences", SBN_HINT)


@pytest.mark.task2_10
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_dtype_and_no_mutation(dtype):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 2, 4, 4)).astype(dtype)
    gamma, beta = np.ones(2, dtype), np.zeros(2, dtype)
    rm, rv = np.zeros(2, dtype), np.ones(2, dtype)
    bn_param = {"mode": "train", "running_mean": rm, "running_var": rv}
    copies = [a.copy() for a in (x, gamma, beta, rm, rv)]
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = spatial_batchnorm_backward(np.ones_like(out), cache)
    for name, a in (("out", out), ("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta),
                    ("running_mean", bn_param["running_mean"])):
        assert a.dtype == dtype, f"spatial batchnorm {name} is {a.dtype} for {dtype.__name__} input"
    for a, c in zip((x, gamma, beta, rm, rv), copies):
        assert np.array_equal(a, c), ("an input array was modified in place; store new running "
                                      "statistics in bn_param instead of updating the old arrays")


# ---------------------------------------------------------------- task2_11: group norm

@pytest.mark.task2_11
def test_groupnorm_hand_computed():
    x = np.array([1.0, 3.0, 10.0, 14.0]).reshape(1, 4, 1, 1)  # 2 groups: {1, 3} and {10, 14}
    gamma = np.array([1.0, 1.0, 2.0, 2.0]).reshape(1, 4, 1, 1)
    beta = np.array([0.0, 0.0, 0.0, 1.0]).reshape(1, 4, 1, 1)
    out, _ = spatial_groupnorm_forward(x, gamma, beta, 2, {"eps": 1e-12})
    check_close(out, np.array([-1.0, 1.0, -2.0, 3.0]).reshape(1, 4, 1, 1), 1e-9, "groupnorm out", GN_HINT)


@pytest.mark.task2_11
@given(case=spatial_cases())
def test_groupnorm_matches_torch(case, torch_vjp):
    x, gamma, beta, G = case
    N, C, H, W = x.shape
    out, cache = spatial_groupnorm_forward(x, gamma.reshape(1, C, 1, 1), beta.reshape(1, C, 1, 1), G,
                                           {"eps": 1e-5})
    dout = np.random.default_rng(out.size).standard_normal(out.shape)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    expected, (e_dx, e_dgamma, e_dbeta) = torch_vjp(
        lambda x, g, b: tF.group_norm(x, G, g, b, eps=1e-5), [x, gamma, beta], dout)
    s_dgamma, s_dbeta = _norm_scales(torch_vjp, lambda x: tF.group_norm(x, G, eps=1e-5), x, dout, (0, 2, 3))
    check_close(out, expected, 1e-9, f"groupnorm out vs torch group_norm (G={G})", GN_HINT,
                scale=np.abs(expected).max())
    check_close(dx, e_dx, 1e-9, f"groupnorm dx vs torch autograd (G={G})", GN_HINT, scale=np.abs(e_dx).max())
    check_close(dgamma, e_dgamma.reshape(1, C, 1, 1), 1e-9, "groupnorm dgamma vs torch autograd",
                "dgamma has shape (1, C, 1, 1): sum dout * x_hat over N, H, W", scale=s_dgamma.reshape(1, C, 1, 1))
    check_close(dbeta, e_dbeta.reshape(1, C, 1, 1), 1e-9, "groupnorm dbeta vs torch autograd",
                "dbeta has shape (1, C, 1, 1): sum dout over N, H, W", scale=s_dbeta.reshape(1, C, 1, 1))


@pytest.mark.task2_11
def test_groupnorm_numerical_gradient():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((2, 6, 3, 2))
    gamma, beta = rng.standard_normal((1, 6, 1, 1)), rng.standard_normal((1, 6, 1, 1))
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 3, {"eps": 1e-5})
    dout = rng.standard_normal(out.shape)
    for name, arr, grad in zip(("dx", "dgamma", "dbeta"), (x, gamma, beta),
                               spatial_groupnorm_backward(dout, cache)):
        num = eval_numerical_gradient_array(
            lambda _: spatial_groupnorm_forward(x, gamma, beta, 3, {"eps": 1e-5})[0], arr, dout)
        check_close(grad, num, 1e-7, f"groupnorm {name} vs central differences", GN_HINT)


@pytest.mark.task2_11
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_groupnorm_dtype_statistics_and_no_mutation(dtype):
    rng = np.random.default_rng(16)
    x = (3 * rng.standard_normal((2, 6, 4, 4)) + 7).astype(dtype)
    gamma, beta = np.ones((1, 6, 1, 1), dtype), np.zeros((1, 6, 1, 1), dtype)
    x_copy = x.copy()
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 2, {"eps": 1e-5})
    dx, dgamma, dbeta = spatial_groupnorm_backward(np.ones_like(out), cache)
    for name, a in (("out", out), ("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta)):
        assert a.dtype == dtype, f"groupnorm {name} is {a.dtype} for {dtype.__name__} input"
    groups = out.astype(np.float64).reshape(2, 2, -1)  # (N, G, C//G * H * W)
    assert np.all(np.abs(groups.mean(axis=2)) < 1e-4), f"{GN_HINT} Group means should be 0."
    assert np.all(np.abs(groups.std(axis=2) - 1) < 1e-3), f"{GN_HINT} Group stds should be 1."
    assert np.array_equal(x, x_copy), "groupnorm modified x in place"
