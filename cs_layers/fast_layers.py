"""Fast conv and max-pool layers in pure numpy: im2col and strided window views.

Same signatures, same shapes, same dtypes and the SAME caches as the naive
layers in layers.py, so the two can be mixed freely: a cache from
conv_forward_naive works in conv_backward_fast and the other way round.
No compiler, no build step, no restart: only numpy.

The idea (task2_5, convolution as one matrix product):
- pad x once, then take every receptive field as a strided *view* with
  np.lib.stride_tricks.sliding_window_view (no copy yet);
- copy the windows into "columns" (im2col): one column of length C*HH*WW per
  output position of every image, so the convolution becomes the single matrix
  product w.reshape(F, C*HH*WW) @ cols;
- backward: dw = dout @ cols.T, and dcols = w.T @ dout is added back onto the
  padded input one kernel offset (i, j) at a time (col2im).
Columns are built for a chunk of images at a time (about CHUNK_BYTES of
them): one buffer is reused instead of a fresh array of hundreds of megabytes,
and each chunk is still one large matrix product (few BLAS calls, so the layer
stays fast when other programs compete for the cores). The arithmetic is the
same as building all columns at once.

The idea (task2_6, max pooling): the window element at offset (i, j) of every
window is the strided slice x[:, :, i::stride, j::stride]; the max over the
window is the running np.maximum over the pool_height * pool_width offsets, and
the backward pass routes dout to the first offset (in row-major order, like
torch and the naive layer) that holds the max.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cs_layers.shapes import check_conv_args, check_dout, check_pool_args

CHUNK_BYTES = 16 * 2**20  # bytes of im2col columns built at a time: cache-friendly, few BLAS calls


def _images_per_chunk(N, column_bytes):
    """How many images' columns fit in CHUNK_BYTES (at least 1, at most N)."""
    return int(min(N, max(1, CHUNK_BYTES // max(1, column_bytes))))


# ---------------------------------------------------------------- task2_5: convolution

def im2col_windows(x, HH, WW, stride, pad):
    """Every receptive field of the zero-padded input, as a view (no copy).

    Inputs:
    - x: input data, (N, C, H, W)
    - HH, WW: kernel height and width
    - stride, pad: as in conv_param, already checked by check_conv_args

    Returns windows, a view of shape (C, HH, WW, N, H_out, W_out) with
      windows[c, i, j, n, y, x] = x_pad[n, c, y*stride + i, x*stride + j]
    so its first three axes are ordered like w.reshape(F, -1) and
    windows.reshape(C*HH*WW, N*H_out*W_out) would be the im2col matrix.
    """
    # task2_5: im2col_windows
    ### BEGIN SOLUTION
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H + 2*pad, W + 2*pad)
    windows = sliding_window_view(x_pad, (HH, WW), axis=(2, 3))  # (N, C, H+2p-HH+1, W+2p-WW+1, HH, WW) view
    windows = windows[:, :, ::stride, ::stride]  # (N, C, H_out, W_out, HH, WW) view
    return windows.transpose(1, 4, 5, 0, 2, 3)  # (C, HH, WW, N, H_out, W_out) view
    ### END SOLUTION



def conv_forward_fast(x, w, b, conv_param):
    """Convolution forward pass with im2col: one matrix product per chunk of images.

    Inputs:
    - x: input data, (N, C, H, W)
    - w: filter weights, (F, C, HH, WW)
    - b: biases, (F,)
    - conv_param: dict with
      - 'stride': int >= 1, the step between neighbouring receptive fields
      - 'pad': int >= 0, zeros added on each side of H and W (do not modify x)

    Returns a tuple of:
    - out: (N, F, H_out, W_out), equal to conv_forward_naive's output, with
        H_out = 1 + (H + 2 * pad - HH) // stride
        W_out = 1 + (W + 2 * pad - WW) // stride
    - cache: (x, w, b, conv_param), exactly as conv_forward_naive

    Raises ValueError when the shapes do not match or stride and pad do not
    tile the input ((H + 2 * pad - HH) % stride != 0).

    Layout (im2col): cols has shape (C*HH*WW, N*H_out*W_out); its rows are
    ordered (c, i, j) like w.reshape(F, -1) and its columns (n, y, x), so
      w.reshape(F, -1) @ cols + b[:, None]     # (F, N*H_out*W_out)
    is the output, to be reshaped to (F, N, H_out, W_out) and transposed to
    (N, F, H_out, W_out). cols is built for a chunk of images at a time.
    """
    stride, pad, H_out, W_out = check_conv_args(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    dtype = np.result_type(x, w, b)
    # task2_5: conv_forward_fast
    ### BEGIN SOLUTION
    windows = im2col_windows(x, HH, WW, stride, pad)  # (C, HH, WW, N, H_out, W_out) view
    K, P = C * HH * WW, H_out * W_out  # rows of cols, output positions per image
    w_rows = w.reshape(F, K).astype(dtype, copy=False)  # (F, K)
    out = np.empty((N, F, P), dtype=dtype)  # (N, F, H_out*W_out)
    step = _images_per_chunk(N, K * P * out.itemsize)
    cols = np.empty((C, HH, WW, step, H_out, W_out), dtype=dtype)  # reused buffer
    for n0 in range(0, N, step):
        m = min(step, N - n0)
        chunk = cols[:, :, :, :m]
        chunk[...] = windows[:, :, :, n0:n0 + m]  # im2col: the only copy of the windows
        prod = w_rows @ chunk.reshape(K, m * P)  # (F, m*P): one matrix product per chunk
        np.add(prod.reshape(F, m, P).transpose(1, 0, 2), b.reshape(F, 1), out=out[n0:n0 + m])  # + bias
    out = out.reshape(N, F, H_out, W_out)
    ### END SOLUTION
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_fast(dout, cache):
    """Convolution backward pass with im2col / col2im.

    Inputs:
    - dout: upstream gradient, (N, F, H_out, W_out)
    - cache: (x, w, b, conv_param) from conv_forward_fast or conv_forward_naive
      (the caches are the same; the columns are rebuilt from x here)

    Returns a tuple of:
    - dx: gradient with respect to x, (N, C, H, W)
    - dw: gradient with respect to w, (F, C, HH, WW)
    - db: gradient with respect to b, (F,)

    With cols and w_rows = w.reshape(F, -1) as in conv_forward_fast and
    dout_rows = dout transposed to (F, N, H_out, W_out), reshaped (F, N*H_out*W_out):
      dw = dout_rows @ cols.T, db = dout summed over (n, y, x),
      dcols = w_rows.T @ dout_rows, and dx adds each dcols entry back onto the
      input pixel its column was copied from (col2im), then drops the padding.
    """
    x, w, b, conv_param = cache
    stride, pad, H_out, W_out = check_conv_args(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    check_dout(dout, (N, F, H_out, W_out), "conv_backward_fast")
    dtype = np.result_type(x, w, dout)
    # task2_5: conv_backward_fast
    ### BEGIN SOLUTION
    windows = im2col_windows(x, HH, WW, stride, pad)  # (C, HH, WW, N, H_out, W_out) view
    K, P = C * HH * WW, H_out * W_out  # rows of cols, output positions per image
    w_rows = w.reshape(F, K).astype(dtype, copy=False)  # (F, K)
    db = dout.sum(axis=(0, 2, 3))  # (F,)
    dw = np.zeros((F, K), dtype=dtype)  # (F, K)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dtype)
    dx_pad_c = dx_pad.transpose(1, 0, 2, 3)  # (C, N, H + 2*pad, W + 2*pad) view, ordered like dcols
    step = _images_per_chunk(N, K * P * dw.itemsize)
    cols = np.empty((C, HH, WW, step, H_out, W_out), dtype=dtype)  # reused buffer
    for n0 in range(0, N, step):
        m = min(step, N - n0)
        chunk = cols[:, :, :, :m]
        chunk[...] = windows[:, :, :, n0:n0 + m]  # im2col, as in the forward pass
        dout_rows = dout[n0:n0 + m].transpose(1, 0, 2, 3).reshape(F, m * P).astype(dtype, copy=False)  # (F, m*P)
        dw += (chunk.reshape(K, m * P) @ dout_rows.T).T  # (F, K); this operand order is faster in OpenBLAS
        dcols = (w_rows.T @ dout_rows).reshape(C, HH, WW, m, H_out, W_out)
        for i in range(HH):  # col2im: kernel offset (i, j) of every window at once
            for j in range(WW):
                ys, xs = slice(i, i + stride * H_out, stride), slice(j, j + stride * W_out, stride)
                dx_pad_c[:, n0:n0 + m, ys, xs] += dcols[:, i, j]  # (C, m, H_out, W_out)
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W].copy()  # (N, C, H, W)
    dw = dw.reshape(F, C, HH, WW)
    ### END SOLUTION
    return dx, dw, db


# ---------------------------------------------------------------- task2_6: max pooling

def max_pool_forward_fast(x, pool_param):
    """Max-pooling forward pass over strided views, with no loop over pixels.

    Inputs:
    - x: input data, (N, C, H, W)
    - pool_param: dict with
      - 'pool_height', 'pool_width': window size, ints >= 1, at most H and W
      - 'stride': int >= 1, the step between neighbouring windows
      Windows may overlap (stride < window) and need not tile the input: rows
      and columns left over at the bottom and right are ignored, as in torch.

    Returns a tuple of:
    - out: (N, C, H_out, W_out), equal to max_pool_forward_naive's output, with
        H_out = 1 + (H - pool_height) // stride
        W_out = 1 + (W - pool_width) // stride
    - cache: (x, pool_param), exactly as max_pool_forward_naive

    Element (i, j) of every window is the strided slice
    x[:, :, i : i + stride*H_out : stride, j : j + stride*W_out : stride], of
    shape (N, C, H_out, W_out); out is the elementwise max of these slices.
    """
    ph, pw, stride, H_out, W_out = check_pool_args(x, pool_param)
    # task2_6: max_pool_forward_fast
    ### BEGIN SOLUTION
    out = x[:, :, :stride * H_out:stride, :stride * W_out:stride].copy()  # (N, C, H_out, W_out)
    for i in range(ph):
        for j in range(pw):
            np.maximum(out, x[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride], out=out)
    ### END SOLUTION
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_fast(dout, cache):
    """Max-pooling backward pass over strided views.

    The gradient of each output goes to its window's maximum: the first one in
    row-major window order if there are ties, exactly like torch and
    max_pool_backward_naive. Where windows overlap, contributions add up.

    Inputs:
    - dout: upstream gradient, (N, C, H_out, W_out)
    - cache: (x, pool_param) from max_pool_forward_fast or max_pool_forward_naive
      (the caches are the same; the max is recomputed from x here)

    Returns dx: gradient with respect to x, (N, C, H, W)
    """
    x, pool_param = cache
    ph, pw, stride, H_out, W_out = check_pool_args(x, pool_param)
    N, C, H, W = x.shape
    check_dout(dout, (N, C, H_out, W_out), "max_pool_backward_fast")
    # task2_6: max_pool_backward_fast
    ### BEGIN SOLUTION
    out, _ = max_pool_forward_fast(x, pool_param)  # (N, C, H_out, W_out)
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))  # (N, C, H, W)
    unclaimed = np.ones(out.shape, dtype=bool)  # windows whose max has not been found yet
    for i in range(ph):  # row-major window order, so ties go to the first max
        for j in range(pw):
            ys, xs = slice(i, i + stride * H_out, stride), slice(j, j + stride * W_out, stride)
            hit = x[:, :, ys, xs] == out  # (N, C, H_out, W_out)
            hit &= unclaimed
            unclaimed ^= hit
            dx[:, :, ys, xs] += dout * hit
    ### END SOLUTION
    return dx
