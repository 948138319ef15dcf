"""ThreeLayerConvNet and its .npz checkpoints.

Architecture:
    conv (stride 1, pad (filter_size - 1) // 2) - relu - 2x2 max pool stride 2
    - affine - relu - affine - softmax
on minibatches of shape (N, C, H, W).

save_model / load_model are given code: a checkpoint is a plain .npz (no
pickle) holding W1, b1, W2, b2, W3, b3, input_dim, and string metadata such as
dataset="digits".
"""
import zipfile

import numpy as np

from cs_layers import course
from cs_layers.geometry import conv_param_count
from cs_layers.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from cs_layers.layers import affine_backward, affine_forward, softmax_loss
from cs_layers.shapes import conv_output_shape, pool_output_shape

PARAM_NAMES = course.PARAM_NAMES
POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}


class ThreeLayerConvNet:
    """A three-layer convolutional network.

    conv - relu - 2x2 max pool - affine - relu - affine - softmax

    Parameters (in self.params):
    - W1: conv filters, (F, C, filter_size, filter_size); b1: (F,)
    - W2: hidden affine, (F * H_pool * W_pool, hidden_dim); b2: (hidden_dim,)
    - W3: output affine, (hidden_dim, num_classes); b3: (num_classes,)
    where H_conv is the conv output size (stride 1, pad = (filter_size - 1) // 2, so
    H_conv = H for odd filter sizes) and H_pool the 2x2 pool's; same for W. Both come
    from your conv_output_size (task2_0), and the conv layer's parameter count is
    checked against your conv_param_count.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32):
        """Initialise a new network.

        Inputs:
        - input_dim: (C, H, W), the size of one input image
        - num_filters: F, the number of conv filters
        - filter_size: width and height of each (square) filter
        - hidden_dim: number of units in the hidden affine layer
        - num_classes: number of scores produced by the last affine layer
        - weight_scale: standard deviation of the normal initialisation of the
          weights (drawn with np.random, so np.random.seed makes it repeatable)
        - reg: L2 regularisation strength; the loss adds 0.5 * reg * sum(W ** 2)
          over W1, W2, W3 (not the biases)
        - dtype: numpy dtype of every parameter; float32 to train, float64 to
          check gradients

        Weights are drawn from N(0, weight_scale ** 2); biases start at zero.
        """
        C, H, W = input_dim
        if min(C, H, W, num_filters, filter_size, hidden_dim, num_classes) < 1:
            raise ValueError(
                f"ThreeLayerConvNet: input_dim={input_dim}, num_filters={num_filters}, filter_size="
                f"{filter_size}, hidden_dim={hidden_dim}, num_classes={num_classes}: all must be >= 1")
        self.params = {}
        self.reg = reg
        self.dtype = dtype
        self.input_dim = tuple(input_dim)
        too_small = ValueError(
            f"ThreeLayerConvNet: images of size {H}x{W} with filter_size={filter_size} are too small "
            f"for the 2x2 max pool; use images of at least 2x2 and an odd filter_size")
        if min(H, W) < 2:
            raise too_small
        pad = (filter_size - 1) // 2
        H_conv, W_conv = conv_output_shape((1, C, H, W), (num_filters, C, filter_size, filter_size), 1, pad)
        if min(H_conv, W_conv) < 2:
            raise too_small
        H_pool, W_pool = pool_output_shape((1, num_filters, H_conv, W_conv), 2, 2, 2)
        # task2_8: ThreeLayerConvNet.__init__
        ### BEGIN SOLUTION
        F, fs = num_filters, filter_size
        self.params["W1"] = weight_scale * np.random.randn(F, C, fs, fs)
        self.params["b1"] = np.zeros(F)
        self.params["W2"] = weight_scale * np.random.randn(F * H_pool * W_pool, hidden_dim)
        self.params["b2"] = np.zeros(hidden_dim)
        self.params["W3"] = weight_scale * np.random.randn(hidden_dim, num_classes)
        self.params["b3"] = np.zeros(num_classes)
        ### END SOLUTION
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)
        conv_count = conv_param_count(C, num_filters, filter_size)  # task2_0
        held = int(np.size(self.params.get("W1", ()))) + int(np.size(self.params.get("b1", ())))
        if held != conv_count:
            raise ValueError(
                f"ThreeLayerConvNet: W1 and b1 hold {held} numbers but conv_param_count({C}, {num_filters}, "
                f"{filter_size}) = {conv_count}; one of them is wrong: W1 is (F, C, HH, WW), b1 is (F,) "
                f"(task2_8), and the count is F * (C * HH * WW + 1) (task2_0)")

    @classmethod
    def from_params(cls, params, reg=0.0, dtype=np.float32, input_dim=None):
        """A network holding copies of the given parameters (W1..b3), without drawing new ones."""
        model = cls.__new__(cls)
        model.params = {k: np.array(params[k], dtype=dtype) for k in PARAM_NAMES}
        model.reg, model.dtype = reg, dtype
        model.input_dim = tuple(input_dim) if input_dim is not None else None
        return model

    def loss(self, X, y=None):
        """Scores, or loss and gradients, for a minibatch.

        Inputs:
        - X: images, (N, C, H, W); cast to self.dtype
        - y: labels, (N,) integers in [0, num_classes), or None

        Returns:
        - if y is None: scores, (N, num_classes)
        - otherwise (loss, grads): loss a Python float (softmax loss plus
          0.5 * reg * sum of squared weights), grads a dict with the same keys
          and shapes as self.params
        """
        X = np.asarray(X, dtype=self.dtype)
        W1, b1 = self.params["W1"], self.params["b1"]
        W2, b2 = self.params["W2"], self.params["b2"]
        W3, b3 = self.params["W3"], self.params["b3"]
        conv_param = {"stride": 1, "pad": (W1.shape[2] - 1) // 2}
        pool_param = dict(POOL_PARAM)
        # task2_8: ThreeLayerConvNet.loss
        ### BEGIN SOLUTION
        h1, cache1 = conv_relu_pool_forward(X, W1, b1, conv_param, pool_param)  # (N, F, H_pool, W_pool)
        h2, cache2 = affine_relu_forward(h1, W2, b2)  # (N, hidden_dim)
        scores, cache3 = affine_forward(h2, W3, b3)  # (N, num_classes)
        if y is None:
            return scores

        grads = {}
        loss, dscores = softmax_loss(scores, y)
        loss += 0.5 * self.reg * sum(float(np.sum(W * W)) for W in (W1, W2, W3))
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, cache2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, cache1, need_dx=False)  # no dX needed
        for name, W in (("W1", W1), ("W2", W2), ("W3", W3)):
            grads[name] = grads[name] + self.reg * W
        ### END SOLUTION
        return loss, grads


# ---------------------------------------------------------------- checkpoints (given code)

def save_model(path, model, **meta):
    """Save a model's parameters to an .npz file (no pickle).

    Inputs:
    - path: file name; numpy appends ".npz" if it does not end with it
    - model: anything with a `params` dict holding W1, b1, W2, b2, W3, b3
    - meta: string metadata, e.g. dataset="digits"; names must not clash with
      the parameter names or "input_dim"

    The file also records model.input_dim when the model has one.
    """
    missing = [k for k in PARAM_NAMES if k not in model.params]
    if missing:
        raise ValueError(f"save_model: model.params lacks {missing}; is this a ThreeLayerConvNet?")
    clash = sorted(set(meta) & (set(PARAM_NAMES) | {"input_dim"}))
    if clash:
        raise ValueError(f"save_model: metadata names {clash} clash with parameter names; rename them")
    arrays = {k: np.asarray(model.params[k]) for k in PARAM_NAMES}
    input_dim = getattr(model, "input_dim", None)
    if input_dim is not None:
        arrays["input_dim"] = np.asarray(input_dim, dtype=np.int64)
    arrays.update({k: np.asarray(str(v)) for k, v in meta.items()})
    np.savez(path, **arrays)


def _bad(path, why):
    return ValueError(f"{path} is not a valid ThreeLayerConvNet checkpoint: {why}. "
                      f"Re-create it with cs_layers.cnn.save_model(path, model).")


def load_model(path, dtype=np.float32):
    """Load a checkpoint written by save_model.

    Inputs:
    - path: the .npz file
    - dtype: dtype of the returned parameters

    Returns a tuple of:
    - model: a ThreeLayerConvNet (reg = 0) whose sizes (num_filters,
      filter_size, hidden_dim, num_classes, input_dim) are read from the
      parameter shapes; input_dim comes from the file, or is inferred
      assuming square images when the file has none
    - meta: dict of the string metadata

    Raises ValueError when the file is not a readable .npz without pickles,
    lacks a parameter, has inconsistent shapes, or holds NaN or inf.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise _bad(path, f"it could not be read as an .npz without pickles ({e})") from e
    missing = [k for k in PARAM_NAMES if k not in data]
    if missing:
        raise _bad(path, f"it lacks {missing}")
    p = {k: data.pop(k) for k in PARAM_NAMES}
    for k, v in p.items():
        if v.dtype.kind not in "fiu":
            raise _bad(path, f"{k} has dtype {v.dtype}, not a number")
        if not np.all(np.isfinite(v)):
            raise _bad(path, f"{k} contains NaN or inf")
    W1, b1, W2, b2, W3, b3 = (p[k] for k in PARAM_NAMES)
    if W1.ndim != 4 or W1.shape[2] != W1.shape[3]:
        raise _bad(path, f"W1 must be (F, C, k, k), got {W1.shape}")
    F, C, fs, _ = W1.shape
    if W2.ndim != 2 or W3.ndim != 2:
        raise _bad(path, f"W2 and W3 must be 2-d, got {W2.shape} and {W3.shape}")
    hidden, classes = W2.shape[1], W3.shape[1]
    if b1.shape != (F,) or b2.shape != (hidden,) or W3.shape[0] != hidden or b3.shape != (classes,):
        raise _bad(path, f"shapes do not fit together: W1 {W1.shape}, b1 {b1.shape}, W2 {W2.shape}, "
                         f"b2 {b2.shape}, W3 {W3.shape}, b3 {b3.shape}")
    if "input_dim" in data:
        input_dim = tuple(int(d) for d in np.asarray(data.pop("input_dim")).ravel())
        if len(input_dim) != 3:
            raise _bad(path, f"input_dim must be (C, H, W), got {input_dim}")
    else:  # assume square images with an odd filter size: H_pool = H // 2
        side = int(round(np.sqrt(W2.shape[0] / F))) if F else 0
        input_dim = (C, 2 * side, 2 * side)
    _, H, W = input_dim
    # Given arithmetic for this one architecture, so that loading never depends on task2_0:
    # a stride-1 conv with pad (fs - 1) // 2 loses one row for an even fs; the pool halves, rounding down.
    H_pool, W_pool = ((n - (fs + 1) % 2) // 2 for n in (H, W))
    if input_dim[0] != C or W2.shape[0] != F * H_pool * W_pool:
        raise _bad(path, f"W2 has {W2.shape[0]} rows but conv/pool on input {input_dim} with W1 "
                         f"{W1.shape} gives {F} * {H_pool} * {W_pool} = {F * H_pool * W_pool} features")
    meta = {}
    for k, v in data.items():
        if v.dtype.kind != "U" or v.ndim != 0:
            raise _bad(path, f"unexpected entry {k!r} of dtype {v.dtype} and shape {v.shape}")
        meta[k] = str(v)
    return ThreeLayerConvNet.from_params(p, dtype=dtype, input_dim=input_dim), meta
