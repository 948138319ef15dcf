"""Runs INSIDE the sandbox next to worker.py: the probes of the module tasks (task2_0 to task2_11).

A probe is one hidden test, written as a plain function: it takes the student's module and
named arguments (the case's arrays, fresh copies, and its JSON parameters, deep copies),
calls the student's functions the way the notebook does, and returns its outputs by name.
The grader runs the same probe on the instructor's module for the expected outputs
(grading/hidden_tests/suite.py), so a probe is the only test code both sides share.

    @probe("layers")
    def conv_forward_naive(layers, *, x, w, b, conv_param):
        out, _ = layers.conv_forward_naive(x, w, b, conv_param)

Results are indexed (``f[0]``, ``g[1]``), never unpacked, so a function that returns the
wrong number of values fails the same way wherever it is called. Nothing a probe returns
is trusted: the worker keeps numeric values only, and the grader validates every array.

Imports numpy only: the worker loads it before any student code runs.
"""
import numpy as np

PROBES = {}  # name -> probe function (with .module: the cs_layers module it tests)


def probe(module: str):
    """Register a probe of `module` (a cs_layers submodule), under the function's name."""
    def register(fn):
        fn.module = module
        PROBES[fn.__name__] = fn
        return fn
    return register


def _raises_value_error(fn, args) -> int:
    """1 when fn(*args) raises ValueError, 0 when it returns (any other exception propagates)."""
    try:
        fn(*args)
    except ValueError:
        return 1
    return 0


def _numbered(name: str, results: list) -> dict:
    return {f"{name}_{i}": r for i, r in enumerate(results)}


def _kernel(k):
    """An int kernel size, or a (height, width) pair: JSON lists become the tuple students expect."""
    return tuple(k) if isinstance(k, list) else k


# ---------------------------------------------------------------- task2_0: geometry (ints, compared exactly)
@probe("geometry")
def conv_output_size(geometry, *, calls, raises=False):
    """calls: [{size, kernel, stride, pad}]; with raises, 1 when each refuses with ValueError."""
    args = [(c["size"], c["kernel"], c["stride"], c["pad"]) for c in calls]
    if raises:
        return _numbered("conv_output_size", [_raises_value_error(geometry.conv_output_size, a) for a in args])
    return _numbered("conv_output_size", [geometry.conv_output_size(*a) for a in args])


@probe("geometry")
def conv_param_count(geometry, *, calls):
    """calls: [{in_channels, out_channels, kernel_size (int or [HH, WW]), bias}]."""
    return _numbered("conv_param_count", [
        geometry.conv_param_count(c["in_channels"], c["out_channels"], _kernel(c["kernel_size"]), c["bias"])
        for c in calls])


@probe("geometry")
def conv_macs(geometry, *, calls):
    """calls: [{input_shape [C, H, W], out_channels, kernel_size (int or [HH, WW]), stride, pad}]."""
    return _numbered("conv_macs", [
        geometry.conv_macs(tuple(c["input_shape"]), c["out_channels"], _kernel(c["kernel_size"]),
                           c["stride"], c["pad"])
        for c in calls])


@probe("geometry")
def receptive_field(geometry, *, stacks):
    """stacks: [[[kernel, stride], ...]]: each stack a list of (kernel, stride) layers."""
    return _numbered("receptive_field", [
        geometry.receptive_field([tuple(layer) for layer in stack]) for stack in stacks])


# ---------------------------------------------------------------- task2_1: building blocks
@probe("layers")
def affine(layers, *, x, w, b, dout):
    f = layers.affine_forward(x, w, b)
    g = layers.affine_backward(dout, f[1])
    return {"out": f[0], "dx": g[0], "dw": g[1], "db": g[2]}


@probe("layers")
def relu(layers, *, x, dout):
    f = layers.relu_forward(x)
    g = layers.relu_backward(dout, f[1])
    return {"out": f[0], "dx": g}


@probe("layers")
def softmax_loss(layers, *, x, y):
    f = layers.softmax_loss(x, y)
    return {"loss": f[0], "dx": f[1]}


# ---------------------------------------------------------------- task2_2, task2_3, task2_5: convolution
@probe("layers")
def conv_forward_naive(layers, *, x, w, b, conv_param):
    f = layers.conv_forward_naive(x, w, b, conv_param)
    return {"out": f[0]}


@probe("layers")
def conv_backward_naive(layers, *, x, w, b, conv_param, dout):
    """The naive cache is documented, (x, w, b, conv_param): built here, not by the forward pass."""
    g = layers.conv_backward_naive(dout, (x, w, b, conv_param))
    return {"dx": g[0], "dw": g[1], "db": g[2]}


@probe("fast_layers")
def conv_forward_fast(fast_layers, *, x, w, b, conv_param):
    f = fast_layers.conv_forward_fast(x, w, b, conv_param)
    return {"out": f[0]}


@probe("fast_layers")
def conv_backward_fast(fast_layers, *, x, w, b, conv_param, dout):
    """A fast cache holds more (the columns): it comes from the student's fast forward pass."""
    f = fast_layers.conv_forward_fast(x, w, b, conv_param)
    g = fast_layers.conv_backward_fast(dout, f[1])
    return {"dx": g[0], "dw": g[1], "db": g[2]}


# ---------------------------------------------------------------- task2_4, task2_6: max pooling
@probe("layers")
def max_pool_forward_naive(layers, *, x, pool_param):
    f = layers.max_pool_forward_naive(x, pool_param)
    return {"out": f[0]}


@probe("layers")
def max_pool_backward_naive(layers, *, x, pool_param, dout):
    """The naive cache is documented, (x, pool_param): built here, not by the forward pass."""
    return {"dx": layers.max_pool_backward_naive(dout, (x, pool_param))}


@probe("fast_layers")
def max_pool_forward_fast(fast_layers, *, x, pool_param):
    f = fast_layers.max_pool_forward_fast(x, pool_param)
    return {"out": f[0]}


@probe("fast_layers")
def max_pool_backward_fast(fast_layers, *, x, pool_param, dout):
    """A fast cache holds more (the argmax): it comes from the student's fast forward pass."""
    f = fast_layers.max_pool_forward_fast(x, pool_param)
    return {"dx": fast_layers.max_pool_backward_fast(dout, f[1])}


@probe("layers")
def max_pool_ties_naive(layers, *, x, pool_param, dout):
    """Forward, then backward through its cache, on an input whose windows tie."""
    f = layers.max_pool_forward_naive(x, pool_param)
    g = layers.max_pool_backward_naive(dout, f[1])
    return {"out": f[0], "dx": g}


@probe("fast_layers")
def max_pool_ties_fast(fast_layers, *, x, pool_param, dout):
    f = fast_layers.max_pool_forward_fast(x, pool_param)
    g = fast_layers.max_pool_backward_fast(dout, f[1])
    return {"out": f[0], "dx": g}


# ---------------------------------------------------------------- task2_7: sandwich layers
@probe("layer_utils")
def affine_relu(layer_utils, *, x, w, b, dout):
    f = layer_utils.affine_relu_forward(x, w, b)
    g = layer_utils.affine_relu_backward(dout, f[1])
    return {"out": f[0], "dx": g[0], "dw": g[1], "db": g[2]}


@probe("layer_utils")
def conv_relu(layer_utils, *, x, w, b, conv_param, dout):
    f = layer_utils.conv_relu_forward(x, w, b, conv_param)
    g = layer_utils.conv_relu_backward(dout, f[1])
    return {"out": f[0], "dx": g[0], "dw": g[1], "db": g[2]}


@probe("layer_utils")
def conv_relu_pool(layer_utils, *, x, w, b, conv_param, pool_param, dout):
    f = layer_utils.conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    g = layer_utils.conv_relu_pool_backward(dout, f[1])
    return {"out": f[0], "dx": g[0], "dw": g[1], "db": g[2]}


@probe("layer_utils")
def conv_bn_relu(layer_utils, *, x, w, b, gamma, beta, conv_param, bn_param, dout):
    f = layer_utils.conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)
    g = layer_utils.conv_bn_relu_backward(dout, f[1])
    return {"out": f[0], "dx": g[0], "dw": g[1], "db": g[2], "dgamma": g[3], "dbeta": g[4]}


# ---------------------------------------------------------------- task2_8: ThreeLayerConvNet
@probe("cnn")
def three_layer_convnet(cnn, *, net, X, y, **weights):
    """Build the net (net: its keyword arguments), set fixed weights, then scores and loss.

    weights: W1, b1, W2, b2, W3, b3. The init_<name>_shape outputs are read after the
    weights are set (as the hidden tests have always done): they check that `params`
    holds every name, not the shapes __init__ chose.
    """
    if net["dtype"] not in ("float32", "float64"):
        raise ValueError(f"the case asks for dtype {net['dtype']!r}; only float32/float64 are allowed")
    model = cnn.ThreeLayerConvNet(**{**net, "dtype": getattr(np, net["dtype"])})
    for name, value in weights.items():
        model.params[name] = value
    scores = model.loss(X.copy())
    loss = model.loss(X, y)
    out = {f"init_{name}_shape": tuple(int(n) for n in model.params[name].shape) for name in weights}
    out.update({"scores": scores, "loss": loss[0]})
    out.update({f"d{name}": loss[1][name] for name in weights})
    return out


# ---------------------------------------------------------------- task2_10, task2_11: normalisation
@probe("layers")
def batchnorm_train(layers, *, x, gamma, beta, bn_param, dout):
    f = layers.batchnorm_forward(x, gamma, beta, bn_param)
    g = layers.batchnorm_backward(dout, f[1])
    return {"out": f[0], "running_mean": bn_param["running_mean"], "running_var": bn_param["running_var"],
            "dx": g[0], "dgamma": g[1], "dbeta": g[2]}


@probe("layers")
def batchnorm_test(layers, *, x, gamma, beta, bn_param, running_mean, running_var):
    f = layers.batchnorm_forward(x, gamma, beta, {**bn_param, "running_mean": running_mean,
                                                  "running_var": running_var})
    return {"out": f[0]}


@probe("layers")
def spatial_batchnorm(layers, *, x, gamma, beta, bn_param, dout):
    f = layers.spatial_batchnorm_forward(x, gamma, beta, bn_param)
    g = layers.spatial_batchnorm_backward(dout, f[1])
    return {"out": f[0], "dx": g[0], "dgamma": g[1], "dbeta": g[2]}


@probe("layers")
def spatial_groupnorm(layers, *, x, gamma, beta, G, gn_param, dout):
    f = layers.spatial_groupnorm_forward(x, gamma, beta, G, gn_param)
    g = layers.spatial_groupnorm_backward(dout, f[1])
    return {"out": f[0], "dx": g[0], "dgamma": g[1], "dbeta": g[2]}
