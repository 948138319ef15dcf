"""Naive layers: affine, relu, softmax loss, conv, max pool, batch norm, group norm.

Every layer is a pair:
- forward(inputs..., param) -> (out, cache)
- backward(dout, cache) -> gradients with the same shapes as the inputs.

Conventions (CS231n): images are (N, C, H, W), conv filters (F, C, HH, WW),
conv_param = {'stride', 'pad'}, pool_param = {'pool_height', 'pool_width',
'stride'}. float32 in gives float32 out, float64 in gives float64 out, and no
input array is ever modified in place.

The naive conv and pool layers loop explicitly over the batch, the filters and
the output positions; only the product over one window is vectorised. The fast
versions live in fast_layers.py, with the same signatures and richer caches: a
cache only fits the backward pass of the layer that made it (caches.py).
"""
import numpy as np

from cs_layers.caches import LayerCache, open_cache
from cs_layers.shapes import (
    check_affine_args,
    check_batchnorm_args,
    check_conv_args,
    check_dout,
    check_groupnorm_args,
    check_nchw,
    check_pool_args,
    check_softmax_args,
)

# ---------------------------------------------------------------- building blocks (task2_1)

def affine_forward(x, w, b):
    """Affine (fully connected) layer forward pass.

    Inputs:
    - x: (N, d_1, ..., d_k), flattened to (N, D) with D = d_1 * ... * d_k
    - w: (D, M)
    - b: (M,)

    Returns a tuple of:
    - out: (N, M): row i is example i, flattened to D numbers, times w, plus b
    - cache: (x, w, b)
    """
    N, D = check_affine_args(x, w, b)
    # task2_1: affine_forward
    ### BEGIN SOLUTION
    out = x.reshape(N, D) @ w + b  # (N, M)
    ### END SOLUTION
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Affine layer backward pass.

    Inputs:
    - dout: upstream gradient, (N, M)
    - cache: (x, w, b) from affine_forward

    Returns a tuple of:
    - dx: (N, d_1, ..., d_k), same shape as x
    - dw: (D, M)
    - db: (M,)
    """
    x, w, b = cache
    check_dout(dout, (np.shape(x)[0], np.shape(w)[1]), "affine_backward")
    # task2_1: affine_backward
    ### BEGIN SOLUTION
    N = x.shape[0]
    dx = (dout @ w.T).reshape(x.shape)  # (N, d_1, ..., d_k)
    dw = x.reshape(N, -1).T @ dout  # (D, M)
    db = dout.sum(axis=0)  # (M,)
    ### END SOLUTION
    return dx, dw, db


def relu_forward(x):
    """ReLU forward pass: out = max(0, x), elementwise.

    Inputs:
    - x: array of any shape

    Returns a tuple of:
    - out: same shape and dtype as x
    - cache: x
    """
    # task2_1: relu_forward
    ### BEGIN SOLUTION
    out = np.maximum(x, 0)
    ### END SOLUTION
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """ReLU backward pass.

    Inputs:
    - dout: upstream gradient, same shape as x
    - cache: x from relu_forward

    Returns dx, same shape as x (the gradient at x == 0 is taken as 0).
    """
    x = cache
    check_dout(dout, np.shape(x), "relu_backward")
    # task2_1: relu_backward
    ### BEGIN SOLUTION
    dx = dout * (x > 0)
    ### END SOLUTION
    return dx


def softmax_loss(x, y):
    """Softmax cross-entropy loss, averaged over the batch.

    Inputs:
    - x: scores, (N, C); x[i, j] is the score of class j for example i
    - y: labels, (N,) integers with 0 <= y[i] < C

    Returns a tuple of:
    - loss: Python float, mean over i of -log softmax(x[i])[y[i]]
    - dx: gradient of the loss with respect to x, (N, C), same dtype as x
    """
    y = check_softmax_args(x, y)
    # task2_1: softmax_loss
    ### BEGIN SOLUTION
    N = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)  # (N, C), for numerical stability
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
    loss = float(-log_probs[np.arange(N), y].mean())
    dx = np.exp(log_probs)  # (N, C) softmax probabilities
    dx[np.arange(N), y] -= 1
    dx /= N
    ### END SOLUTION
    return loss, dx


# ---------------------------------------------------------------- convolution (task2_2, task2_3)

def conv_forward_naive(x, w, b, conv_param):
    """Convolution forward pass, with explicit loops.

    Each of the N inputs has C channels, height H and width W; it is
    cross-correlated with F filters, each spanning all C channels with
    height HH and width WW, after zero-padding by `pad` on every side.

    Inputs:
    - x: input data, (N, C, H, W)
    - w: filter weights, (F, C, HH, WW)
    - b: biases, (F,)
    - conv_param: dict with
      - 'stride': int >= 1, the step between neighbouring receptive fields
      - 'pad': int >= 0, zeros added on each side of H and W (do not modify x)

    Returns a tuple of:
    - out: (N, F, H_out, W_out) with
        H_out = 1 + (H + 2 * pad - HH) // stride
        W_out = 1 + (W + 2 * pad - WW) // stride
      out[n, f, i, j] = sum(x_pad[n, :, i*stride : i*stride+HH, j*stride : j*stride+WW] * w[f]) + b[f]
    - cache: (x, w, b, conv_param), a tuple tagged as made by conv_forward_naive

    Raises ValueError when the shapes do not match or stride and pad do not
    tile the input ((H + 2 * pad - HH) % stride != 0).
    """
    stride, pad, H_out, W_out = check_conv_args(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    out = np.zeros((N, F, H_out, W_out), dtype=np.result_type(x, w, b))
    # task2_2: conv_forward_naive
    ### BEGIN SOLUTION
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H + 2*pad, W + 2*pad)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    window = x_pad[n, :, hs:hs + HH, ws:ws + WW]  # (C, HH, WW)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    ### END SOLUTION
    cache = LayerCache("conv_forward_naive", (x, w, b, conv_param))
    return out, cache


def conv_backward_naive(dout, cache, *, need_dx=True):
    """Convolution backward pass, with explicit loops.

    Inputs:
    - dout: upstream gradient, (N, F, H_out, W_out)
    - cache: (x, w, b, conv_param) as returned by conv_forward_naive, or that
      plain tuple built by hand; the cache of any other layer is refused
    - need_dx: keyword only; False returns None for dx (the same signature as
      conv_backward_fast, which then skips computing it)

    Returns a tuple of:
    - dx: gradient with respect to x, (N, C, H, W), or None if not need_dx
    - dw: gradient with respect to w, (F, C, HH, WW)
    - db: gradient with respect to b, (F,)
    """
    x, w, b, conv_param = open_cache(cache, "conv_forward_naive", "conv_backward_naive", plain_size=4)
    stride, pad, H_out, W_out = check_conv_args(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    check_dout(dout, (N, F, H_out, W_out), "conv_backward_naive")
    # task2_3: conv_backward_naive
    ### BEGIN SOLUTION
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H + 2*pad, W + 2*pad)
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))  # (F,)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    g = dout[n, f, i, j]
                    dw[f] += x_pad[n, :, hs:hs + HH, ws:ws + WW] * g  # (C, HH, WW)
                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * g  # (C, HH, WW)
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]  # (N, C, H, W)
    ### END SOLUTION
    return (dx if need_dx else None), dw, db


# ---------------------------------------------------------------- max pooling (task2_4)

def max_pool_forward_naive(x, pool_param):
    """Max-pooling forward pass, with explicit loops.

    Inputs:
    - x: input data, (N, C, H, W)
    - pool_param: dict with
      - 'pool_height', 'pool_width': window size, ints >= 1, at most H and W
      - 'stride': int >= 1, the step between neighbouring windows
      Windows may overlap (stride < window) and need not tile the input: rows
      and columns left over at the bottom and right are ignored, as in torch.

    Returns a tuple of:
    - out: (N, C, H_out, W_out) with
        H_out = 1 + (H - pool_height) // stride
        W_out = 1 + (W - pool_width) // stride
      out[n, c, i, j] = max of x[n, c, i*stride : i*stride+pool_height, j*stride : j*stride+pool_width]
    - cache: (x, pool_param), a tuple tagged as made by max_pool_forward_naive
    """
    ph, pw, stride, H_out, W_out = check_pool_args(x, pool_param)
    N, C, H, W = x.shape
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    # task2_4: max_pool_forward_naive
    ### BEGIN SOLUTION
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                hs, ws = i * stride, j * stride
                window = x[n, :, hs:hs + ph, ws:ws + pw]  # (C, ph, pw)
                out[n, :, i, j] = window.max(axis=(1, 2))
    ### END SOLUTION
    cache = LayerCache("max_pool_forward_naive", (x, pool_param))
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Max-pooling backward pass, with explicit loops.

    The gradient of each output goes to the position of its window's maximum
    (the first one in row-major order if there are ties, as torch does); with
    overlapping windows the contributions add up.

    Inputs:
    - dout: upstream gradient, (N, C, H_out, W_out)
    - cache: (x, pool_param) as returned by max_pool_forward_naive, or that
      plain tuple built by hand; the cache of any other layer is refused

    Returns dx: gradient with respect to x, (N, C, H, W)
    """
    x, pool_param = open_cache(cache, "max_pool_forward_naive", "max_pool_backward_naive", plain_size=2)
    ph, pw, stride, H_out, W_out = check_pool_args(x, pool_param)
    N, C, H, W = x.shape
    check_dout(dout, (N, C, H_out, W_out), "max_pool_backward_naive")
    # task2_4: max_pool_backward_naive
    ### BEGIN SOLUTION
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    channels = np.arange(C)
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                hs, ws = i * stride, j * stride
                window = x[n, :, hs:hs + ph, ws:ws + pw].reshape(C, ph * pw)  # (C, ph*pw)
                k = window.argmax(axis=1)  # (C,) flat index of each channel's max
                dx[n, channels, hs + k // pw, ws + k % pw] += dout[n, :, i, j]
    ### END SOLUTION
    return dx


# ---------------------------------------------------------------- batch normalisation (task2_10)

def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation forward pass.

    Train mode: normalise each feature with the batch mean and (biased)
    variance, then scale and shift; update the running statistics as
    exponential moving averages of the batch mean and variance (the CS231n
    convention: momentum is the weight of the OLD running value, 1 - momentum
    that of the batch statistic, and the variance is the biased batch
    variance). Test mode: normalise with the running statistics.

    Inputs:
    - x: data, (N, D)
    - gamma: scale, (D,)
    - beta: shift, (D,)
    - bn_param: dict with
      - 'mode': 'train' or 'test' (required)
      - 'eps': added to the variance, default 1e-5
      - 'momentum': default 0.9
      - 'running_mean', 'running_var': (D,), default zeros; replaced by the
        updated arrays in train mode (the arrays passed in are not modified)

    Returns a tuple of:
    - out: (N, D), gamma * (x - mean) / sqrt(var + eps) + beta
    - cache: (x_hat, gamma, inv_std, mode) with x_hat (N, D) the normalised
      input and inv_std (D,) = 1 / sqrt(var + eps) of the statistics used
    """
    mode = check_batchnorm_args(x, gamma, beta, bn_param)
    N, D = x.shape
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    running_mean = np.asarray(bn_param.get("running_mean", np.zeros(D, dtype=x.dtype)), dtype=x.dtype)
    running_var = np.asarray(bn_param.get("running_var", np.zeros(D, dtype=x.dtype)), dtype=x.dtype)
    # task2_10: batchnorm_forward
    ### BEGIN SOLUTION
    if mode == "train":
        mean = x.mean(axis=0)  # (D,)
        var = x.var(axis=0)  # (D,) biased
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        mean, var = running_mean, running_var
    inv_std = 1 / np.sqrt(var + eps)  # (D,)
    x_hat = (x - mean) * inv_std  # (N, D)
    out = gamma * x_hat + beta  # (N, D)
    ### END SOLUTION
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    cache = (x_hat, gamma, inv_std, mode)
    return out, cache


def batchnorm_backward(dout, cache):
    """Batch normalisation backward pass.

    Inputs:
    - dout: upstream gradient, (N, D)
    - cache: (x_hat, gamma, inv_std, mode) from batchnorm_forward

    Returns a tuple of:
    - dx: (N, D). In train mode the mean and the variance are computed from
      the batch, so every x[i] also moves them: besides the direct path
      through x_hat, dx collects the paths through the batch mean and the
      batch variance (work them out on paper from the computational graph;
      sums over the batch appear). In test mode the statistics are constants
      and only the direct path remains.
    - dgamma: (D,)
    - dbeta: (D,)
    """
    x_hat, gamma, inv_std, mode = cache
    check_dout(dout, np.shape(x_hat), "batchnorm_backward")
    # task2_10: batchnorm_backward
    ### BEGIN SOLUTION
    dbeta = dout.sum(axis=0)  # (D,)
    dgamma = (dout * x_hat).sum(axis=0)  # (D,)
    dx_hat = dout * gamma  # (N, D)
    if mode == "train":
        dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))
    else:
        dx = dx_hat * inv_std
    ### END SOLUTION
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Spatial batch normalisation forward pass.

    Normalises each channel over the batch and all spatial positions, i.e.
    batchnorm_forward on the (N * H * W, C) matrix of per-pixel feature vectors.

    Inputs:
    - x: (N, C, H, W)
    - gamma, beta: (C,)
    - bn_param: as batchnorm_forward; running_mean and running_var are (C,)

    Returns a tuple of:
    - out: (N, C, H, W)
    - cache: the cache of the underlying batchnorm_forward call
    """
    check_nchw(x, "spatial_batchnorm_forward", "x")
    N, C, H, W = x.shape
    # task2_10: spatial_batchnorm_forward
    ### BEGIN SOLUTION
    x_flat = x.transpose(0, 2, 3, 1).reshape(-1, C)  # (N*H*W, C)
    out_flat, cache = batchnorm_forward(x_flat, gamma, beta, bn_param)
    out = out_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)  # (N, C, H, W)
    ### END SOLUTION
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """Spatial batch normalisation backward pass.

    Inputs:
    - dout: upstream gradient, (N, C, H, W)
    - cache: from spatial_batchnorm_forward

    Returns a tuple of:
    - dx: (N, C, H, W)
    - dgamma, dbeta: (C,)
    """
    check_nchw(dout, "spatial_batchnorm_backward", "dout")
    N, C, H, W = dout.shape
    # task2_10: spatial_batchnorm_backward
    ### BEGIN SOLUTION
    dout_flat = dout.transpose(0, 2, 3, 1).reshape(-1, C)  # (N*H*W, C)
    dx_flat, dgamma, dbeta = batchnorm_backward(dout_flat, cache)
    dx = dx_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)  # (N, C, H, W)
    ### END SOLUTION
    return dx, dgamma, dbeta


# ---------------------------------------------------------------- group normalisation (task2_11)

def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Spatial group normalisation forward pass.

    The C channels of each sample are split into G groups of C // G
    consecutive channels; each group is normalised with its own mean and
    (biased) variance over (C // G, H, W), then every channel is scaled and
    shifted. Unlike batch norm, train and test behave the same.

    Inputs:
    - x: (N, C, H, W)
    - gamma, beta: (1, C, 1, 1)
    - G: number of groups, an int that divides C
    - gn_param: dict with 'eps' (default 1e-5)

    Returns a tuple of:
    - out: (N, C, H, W)
    - cache: (x_hat, gamma, inv_std, G) with x_hat (N, C, H, W) the normalised
      input and inv_std (N, G, 1) = 1 / sqrt(var + eps) per sample and group
    """
    check_groupnorm_args(x, gamma, beta, G)
    N, C, H, W = x.shape
    eps = gn_param.get("eps", 1e-5)
    # task2_11: spatial_groupnorm_forward
    ### BEGIN SOLUTION
    x_g = x.reshape(N, G, -1)  # (N, G, C//G * H * W)
    mean = x_g.mean(axis=2, keepdims=True)  # (N, G, 1)
    inv_std = 1 / np.sqrt(x_g.var(axis=2, keepdims=True) + eps)  # (N, G, 1)
    x_hat = ((x_g - mean) * inv_std).reshape(N, C, H, W)
    out = gamma * x_hat + beta  # (N, C, H, W)
    ### END SOLUTION
    cache = (x_hat, gamma, inv_std, G)
    return out, cache


def spatial_groupnorm_backward(dout, cache):
    """Spatial group normalisation backward pass.

    Inputs:
    - dout: upstream gradient, (N, C, H, W)
    - cache: (x_hat, gamma, inv_std, G) from spatial_groupnorm_forward

    Returns a tuple of:
    - dx: (N, C, H, W)
    - dgamma, dbeta: (1, C, 1, 1)
    """
    x_hat, gamma, inv_std, G = cache
    check_dout(dout, np.shape(x_hat), "spatial_groupnorm_backward")
    N, C, H, W = x_hat.shape
    # task2_11: spatial_groupnorm_backward
    ### BEGIN SOLUTION
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
    dx_hat = (dout * gamma).reshape(N, G, -1)  # (N, G, M), M = C//G * H * W
    x_hat_g = x_hat.reshape(N, G, -1)  # (N, G, M)
    dx_g = inv_std * (dx_hat - dx_hat.mean(axis=2, keepdims=True)
                      - x_hat_g * (dx_hat * x_hat_g).mean(axis=2, keepdims=True))
    dx = dx_g.reshape(N, C, H, W)
    ### END SOLUTION
    return dx, dgamma, dbeta
