"""Sandwich layers: common stacks of small layers as one forward/backward pair.

Each forward returns (out, cache) where cache is the tuple of the caches of
the layers it composes, in order; each backward unwinds them in reverse.

The conv and pool implementation is chosen by the alias below: the fast
layers by default. To run everything on your naive layers instead (slow, but
handy while fast_layers.py is unfinished), rebind the alias in a notebook:

    import cs_layers.layer_utils as lu
    from cs_layers.layers import conv_forward_naive, conv_backward_naive
    lu.conv_forward, lu.conv_backward = conv_forward_naive, conv_backward_naive
"""
from cs_layers.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from cs_layers.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

# The one place that picks the conv/pool implementation.
conv_forward, conv_backward = conv_forward_fast, conv_backward_fast
max_pool_forward, max_pool_backward = max_pool_forward_fast, max_pool_backward_fast


def affine_relu_forward(x, w, b):
    """Affine followed by ReLU.

    Inputs:
    - x: (N, d_1, ..., d_k); w: (D, M); b: (M,)

    Returns a tuple of:
    - out: (N, M)
    - cache: (fc_cache, relu_cache)
    """
    # task2_7: affine_relu_forward
    ### BEGIN SOLUTION
    a, fc_cache = affine_forward(x, w, b)  # (N, M)
    out, relu_cache = relu_forward(a)
    ### END SOLUTION
    cache = (fc_cache, relu_cache)
    return out, cache


def affine_relu_backward(dout, cache):
    """Backward pass of affine_relu_forward.

    Inputs:
    - dout: (N, M)
    - cache: (fc_cache, relu_cache)

    Returns (dx, dw, db) with the shapes of x, w, b.
    """
    fc_cache, relu_cache = cache
    # task2_7: affine_relu_backward
    ### BEGIN SOLUTION
    da = relu_backward(dout, relu_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    ### END SOLUTION
    return dx, dw, db


def conv_relu_forward(x, w, b, conv_param):
    """Convolution followed by ReLU.

    Inputs:
    - x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); conv_param: {'stride', 'pad'}

    Returns a tuple of:
    - out: (N, F, H_out, W_out), sizes as in conv_forward_naive
    - cache: (conv_cache, relu_cache)
    """
    # task2_7: conv_relu_forward
    ### BEGIN SOLUTION
    a, conv_cache = conv_forward(x, w, b, conv_param)  # (N, F, H_out, W_out)
    out, relu_cache = relu_forward(a)
    ### END SOLUTION
    cache = (conv_cache, relu_cache)
    return out, cache


def conv_relu_backward(dout, cache, *, need_dx=True):
    """Backward pass of conv_relu_forward.

    Inputs:
    - dout: (N, F, H_out, W_out)
    - cache: (conv_cache, relu_cache)
    - need_dx: keyword only, passed on to conv_backward (False: dx is None)

    Returns (dx, dw, db) with the shapes of x, w, b.
    """
    conv_cache, relu_cache = cache
    # task2_7: conv_relu_backward
    ### BEGIN SOLUTION
    da = relu_backward(dout, relu_cache)
    dx, dw, db = conv_backward(da, conv_cache, need_dx=need_dx)
    ### END SOLUTION
    return dx, dw, db


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """Convolution, ReLU, then max pooling.

    Inputs:
    - x: (N, C, H, W); w: (F, C, HH, WW); b: (F,)
    - conv_param: {'stride', 'pad'}; pool_param: {'pool_height', 'pool_width', 'stride'}

    Returns a tuple of:
    - out: (N, F, H_pool, W_pool), conv sizes then pool sizes as in layers.py
    - cache: (conv_cache, relu_cache, pool_cache)
    """
    # task2_7: conv_relu_pool_forward
    ### BEGIN SOLUTION
    a, conv_cache = conv_forward(x, w, b, conv_param)  # (N, F, H_out, W_out)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward(s, pool_param)  # (N, F, H_pool, W_pool)
    ### END SOLUTION
    cache = (conv_cache, relu_cache, pool_cache)
    return out, cache


def conv_relu_pool_backward(dout, cache, *, need_dx=True):
    """Backward pass of conv_relu_pool_forward.

    Inputs:
    - dout: (N, F, H_pool, W_pool)
    - cache: (conv_cache, relu_cache, pool_cache)
    - need_dx: keyword only, passed on to conv_backward (False: dx is None)

    Returns (dx, dw, db) with the shapes of x, w, b.
    """
    conv_cache, relu_cache, pool_cache = cache
    # task2_7: conv_relu_pool_backward
    ### BEGIN SOLUTION
    ds = max_pool_backward(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    dx, dw, db = conv_backward(da, conv_cache, need_dx=need_dx)
    ### END SOLUTION
    return dx, dw, db


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """Convolution, spatial batch normalisation, then ReLU.

    Inputs:
    - x: (N, C, H, W); w: (F, C, HH, WW); b: (F,)
    - gamma, beta: (F,)
    - conv_param: {'stride', 'pad'}; bn_param: as spatial_batchnorm_forward

    Returns a tuple of:
    - out: (N, F, H_out, W_out)
    - cache: (conv_cache, bn_cache, relu_cache)
    """
    # task2_7: conv_bn_relu_forward
    ### BEGIN SOLUTION
    a, conv_cache = conv_forward(x, w, b, conv_param)  # (N, F, H_out, W_out)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    ### END SOLUTION
    cache = (conv_cache, bn_cache, relu_cache)
    return out, cache


def conv_bn_relu_backward(dout, cache, *, need_dx=True):
    """Backward pass of conv_bn_relu_forward.

    Inputs:
    - dout: (N, F, H_out, W_out)
    - cache: (conv_cache, bn_cache, relu_cache)
    - need_dx: keyword only, passed on to conv_backward (False: dx is None)

    Returns (dx, dw, db, dgamma, dbeta) with the shapes of x, w, b, gamma, beta.
    """
    conv_cache, bn_cache, relu_cache = cache
    # task2_7: conv_bn_relu_backward
    ### BEGIN SOLUTION
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward(da, conv_cache, need_dx=need_dx)
    ### END SOLUTION
    return dx, dw, db, dgamma, dbeta
