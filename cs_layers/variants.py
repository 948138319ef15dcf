"""Networks to compare the ThreeLayerConvNet with (given code, built from your layers).

- FullyConnectedNet: affine - relu - affine - softmax on the flattened image, the
  baseline a ConvNet must beat.
- StridedConvNet: the ThreeLayerConvNet with one stride-2 convolution in place of the
  stride-1 convolution and the 2x2 max pool (same output size; 8x8 filters, see below).
- GapConvNet: the ThreeLayerConvNet's conv - relu - pool, then a 1x1 convolution to
  one map per class and global average pooling in place of the flatten + two affine layers.

Each has `params`, `reg` and `loss(X, y=None)` like ThreeLayerConvNet, so the Solver
trains it. `num_params(model)` counts the parameters from the arrays themselves.
"""
from functools import partial

import numpy as np

from cs_layers.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_backward,
    conv_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from cs_layers.layers import affine_backward, affine_forward, softmax_loss

POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}


def num_params(model):
    """The number of learnable numbers in model.params."""
    return int(sum(p.size for p in model.params.values()))


def global_avg_pool_forward(x):
    """Mean of each map: x (N, C, H, W) -> out (N, C); the cache is x's shape."""
    return x.mean(axis=(2, 3)), x.shape


def global_avg_pool_backward(dout, cache):
    """Each of the H*W inputs of a map gets 1/(H*W) of its upstream gradient. Returns (dx,)."""
    N, C, H, W = cache
    return (np.broadcast_to(dout[:, :, None, None] / (H * W), cache).copy(),)


class _Net:
    """A stack of (forward, backward, parameter names, extra forward arguments) layers
    and a softmax loss with L2 on every weight (names starting with W)."""

    def _init(self, shapes, weight_scale, reg, dtype):
        self.params, self.reg, self.dtype = {}, reg, dtype
        for name, shape in shapes.items():
            draw = weight_scale * np.random.randn(*shape) if name.startswith("W") else np.zeros(shape)
            self.params[name] = draw.astype(dtype)

    def loss(self, X, y=None):
        """Scores (N, num_classes) when y is None, else (loss, grads) like ThreeLayerConvNet.loss."""
        out, caches = np.asarray(X, self.dtype), []
        for forward, _, names, extra in self.layers:
            out, cache = forward(out, *(self.params[k] for k in names), *extra)
            caches.append(cache)
        return out if y is None else self._backward(out, y, caches)

    def _backward(self, scores, y, caches):
        """(loss, grads): softmax loss of the scores, back through the layers in reverse."""
        total, upstream = softmax_loss(scores, y)
        named = []  # (parameter name, gradient) pairs, last layer first
        for (_, backward, names, _), cache in zip(self.layers[::-1], caches[::-1]):
            upstream, *param_grads = backward(upstream, cache)
            named += zip(names, param_grads)
        grads = dict(named)
        for k, v in self.params.items():
            if k.startswith("W"):
                total += 0.5 * self.reg * float(np.sum(v * v))
                grads[k] = grads[k] + self.reg * v
        return total, grads


class FullyConnectedNet(_Net):
    """affine - relu - affine - softmax on images flattened to (N, C*H*W).

    W1: (C*H*W, hidden_dim), b1; W2: (hidden_dim, num_classes), b2.
    """

    def __init__(self, input_dim=(3, 32, 32), hidden_dim=100, num_classes=10, weight_scale=1e-3,
                 reg=0.0, dtype=np.float32):
        D = int(np.prod(input_dim))
        self._init({"W1": (D, hidden_dim), "b1": (hidden_dim,), "W2": (hidden_dim, num_classes),
                    "b2": (num_classes,)}, weight_scale, reg, dtype)
        self.layers = [(affine_relu_forward, affine_relu_backward, ("W1", "b1"), ()),
                       (affine_forward, affine_backward, ("W2", "b2"), ())]


class StridedConvNet(_Net):
    """conv (stride 2) - relu - affine - relu - affine - softmax.

    The stride-2 convolution halves H and W as the 2x2 max pool does, so the
    affine layers have the ThreeLayerConvNet's shapes. Its default 8x8 filters
    (pad 3) see the same 8x8 pixels as one unit after a 7x7 conv and a 2x2 pool;
    a 7x7 filter with stride 2 cannot tile 32 pixels (32 + 2*pad - 7 is odd for
    every pad). It computes a quarter of the convolution outputs, and learns the
    downsampling instead of taking the largest of four.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=8, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32):
        C, H, W = input_dim
        pad = (filter_size - 1) // 2
        H_out, W_out = 1 + (H + 2 * pad - filter_size) // 2, 1 + (W + 2 * pad - filter_size) // 2
        self._init({"W1": (num_filters, C, filter_size, filter_size), "b1": (num_filters,),
                    "W2": (num_filters * H_out * W_out, hidden_dim), "b2": (hidden_dim,),
                    "W3": (hidden_dim, num_classes), "b3": (num_classes,)}, weight_scale, reg, dtype)
        self.layers = [(conv_relu_forward, partial(conv_relu_backward, need_dx=False), ("W1", "b1"),
                        ({"stride": 2, "pad": pad},)),
                       (affine_relu_forward, affine_relu_backward, ("W2", "b2"), ()),
                       (affine_forward, affine_backward, ("W3", "b3"), ())]


class GapConvNet(_Net):
    """conv - relu - 2x2 max pool - 1x1 conv - global average pool - softmax.

    The 1x1 convolution (W2: (num_classes, num_filters, 1, 1)) turns every pooled
    position's num_filters features into num_classes scores; averaging those maps
    over all positions gives the class scores, wherever in the image the evidence is.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=np.float32):
        C = input_dim[0]
        self._init({"W1": (num_filters, C, filter_size, filter_size), "b1": (num_filters,),
                    "W2": (num_classes, num_filters, 1, 1), "b2": (num_classes,)}, weight_scale, reg, dtype)
        self.layers = [(conv_relu_pool_forward, partial(conv_relu_pool_backward, need_dx=False), ("W1", "b1"),
                        ({"stride": 1, "pad": (filter_size - 1) // 2}, dict(POOL_PARAM))),
                       (conv_forward, conv_backward, ("W2", "b2"), ({"stride": 1, "pad": 0},)),
                       (global_avg_pool_forward, global_avg_pool_backward, (), ())]
