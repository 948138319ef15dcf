"""Fast conv and max-pool layers in pure numpy: im2col and strided window views.

Same signatures, shapes and dtypes as the naive layers in layers.py, and the
same numbers. The caches differ: each fast forward pass keeps what its
backward pass needs (the im2col columns, the position of every window's max),
so the backward pass does not redo the forward's work. A cache therefore only
fits the backward pass of the layer that made it; any other cache is refused
with a ValueError (caches.open_cache). No compiler, no build step, only numpy.

The idea (task2_5, convolution as one matrix product):
- pad x once, then take every receptive field as a strided *view* with
  np.lib.stride_tricks.sliding_window_view (no copy yet);
- copy the windows into "columns" (im2col): one column of length C*HH*WW per
  output position of every image, so the convolution becomes the single matrix
  product w.reshape(F, C*HH*WW) @ cols;
- backward: dw = dout @ cols.T with the cached columns, and dcols = w.T @ dout
  is added back onto the padded input one kernel offset (i, j) at a time
  (col2im).

The idea (task2_6, max pooling): the window element at offset (i, j) of every
window is the strided slice x[:, :, i::stride, j::stride]; the max over the
window is the running np.maximum over the pool_height * pool_width offsets.
The forward pass also records, for every window, where its first max sits in x
(a flat index, row-major window order, like torch and the naive layer); the
backward pass scatters dout to exactly those places. Both run over
cache-sized chunks of the batch on a few threads (batch_chunks.py, given
code), which changes no result.

Given code outside the student regions also keeps the memory of freed arrays in
the process for the next call (allocator.py): the large temporaries here would
otherwise pay a page fault per 4 KiB page on every call.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cs_layers.allocator import keep_freed_memory
from cs_layers.batch_chunks import for_batch_chunks
from cs_layers.caches import LayerCache, open_cache
from cs_layers.shapes import check_conv_args, check_dout, check_pool_args

keep_freed_memory()  # given code: reuse freed memory for the next temporaries (allocator.py)

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
    """Convolution forward pass with im2col: one matrix product.

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
    - cache: LayerCache (x, w, b, conv_param, cols), for conv_backward_fast only

    Raises ValueError when the shapes do not match or stride and pad do not
    tile the input ((H + 2 * pad - HH) % stride != 0).

    Layout (im2col): cols has shape (C*HH*WW, N*H_out*W_out); its rows are
    ordered (c, i, j) like w.reshape(F, -1) and its columns (n, y, x), so
      w.reshape(F, -1) @ cols + b[:, None]     # (F, N*H_out*W_out)
    is the output, to be reshaped to (F, N, H_out, W_out) and transposed to
    (N, F, H_out, W_out). The backward pass reuses cols for dw.
    """
    stride, pad, H_out, W_out = check_conv_args(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    dtype = np.result_type(x, w, b)
    # task2_5: conv_forward_fast
    ### BEGIN SOLUTION
    windows = im2col_windows(x, HH, WW, stride, pad)  # (C, HH, WW, N, H_out, W_out) view
    cols = windows.reshape(C * HH * WW, N * H_out * W_out).astype(dtype, copy=False)  # im2col: the one copy
    prod = w.reshape(F, -1).astype(dtype, copy=False) @ cols  # (F, N*H_out*W_out)
    out = np.empty((N, F, H_out, W_out), dtype=dtype)
    np.add(prod.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3), b.reshape(F, 1, 1), out=out)
    ### END SOLUTION
    cache = LayerCache("conv_forward_fast", (x, w, b, conv_param, cols))
    return out, cache


def conv_backward_fast(dout, cache, *, need_dx=True):
    """Convolution backward pass with im2col / col2im.

    Inputs:
    - dout: upstream gradient, (N, F, H_out, W_out)
    - cache: (x, w, b, conv_param, cols) from conv_forward_fast (and no other
      layer: a naive cache lacks the columns and is refused with a ValueError)
    - need_dx: keyword only; False skips dx (returned as None), for a first
      layer whose input gradient nobody uses

    Returns a tuple of:
    - dx: gradient with respect to x, (N, C, H, W), or None if not need_dx
    - dw: gradient with respect to w, (F, C, HH, WW)
    - db: gradient with respect to b, (F,)

    With cols and w_rows = w.reshape(F, -1) as in conv_forward_fast and
    dout_rows = dout transposed to (F, N, H_out, W_out), reshaped (F, N*H_out*W_out):
      dw = dout_rows @ cols.T, db = dout summed over (n, y, x),
      dcols = w_rows.T @ dout_rows, and dx adds each dcols entry back onto the
      input pixel its column was copied from (col2im), then drops the padding.
    """
    x, w, b, conv_param, cols = open_cache(cache, "conv_forward_fast", "conv_backward_fast")
    stride, pad, H_out, W_out = check_conv_args(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    check_dout(dout, (N, F, H_out, W_out), "conv_backward_fast")
    dtype = np.result_type(x, w, dout)
    dx = None
    # task2_5: conv_backward_fast
    ### BEGIN SOLUTION
    dout_rows = dout.transpose(1, 0, 2, 3).reshape(F, -1).astype(dtype, copy=False)  # (F, N*H_out*W_out)
    db = dout.sum(axis=(0, 2, 3))  # (F,)
    dw = (dout_rows @ cols.T).reshape(F, C, HH, WW)
    if need_dx:
        dcols = w.reshape(F, -1).T.astype(dtype, copy=False) @ dout_rows  # (C*HH*WW, N*H_out*W_out)
        dcols = dcols.reshape(C, HH, WW, N, H_out, W_out)
        dx_pad = np.zeros((C, N, H + 2 * pad, W + 2 * pad), dtype=dtype)  # ordered like dcols
        for i in range(HH):  # col2im: kernel offset (i, j) of every window at once
            for j in range(WW):
                ys, xs = slice(i, i + stride * H_out, stride), slice(j, j + stride * W_out, stride)
                dx_pad[:, :, ys, xs] += dcols[:, i, j]  # (C, N, H_out, W_out)
        dx = dx_pad[:, :, pad:pad + H, pad:pad + W].transpose(1, 0, 2, 3).copy()  # (N, C, H, W)
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
    - cache: LayerCache (x, pool_param, argmax), for max_pool_backward_fast only;
      argmax (N, C, H_out, W_out) holds, for every window, where its first max
      (row-major window order, like torch and the naive layer) sits in x: the
      flat index into x.reshape(-1) in C order (np.intp, like torch's indices)

    Element (i, j) of every window is the strided slice
    x[:, :, i : i + stride*H_out : stride, j : j + stride*W_out : stride], of
    shape (N, C, H_out, W_out); out is the running maximum over these slices
    in row-major window order. Element (i, j) of a window lies i * W + j after
    the window's corner (element (0, 0)) in x.reshape(-1), and that distance
    grows in row-major order; where the running maximum grows strictly at
    (i, j), the max moves there (so ties keep the first max). argmax is the
    flat index of each window's corner plus that distance.

    The work runs over chunks of images (batch_chunks.for_batch_chunks, given
    code: cache-sized chunks on a few threads); pool(n) fills the outputs of
    the images n, a slice of the batch.
    """
    ph, pw, stride, H_out, W_out = check_pool_args(x, pool_param)
    N, C, H, W = x.shape
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    argmax = np.empty((N, C, H_out, W_out), dtype=np.intp)

    def pool(n):  # fills out[n] and argmax[n] from x[n]
        # task2_6: max_pool_forward_fast
        ### BEGIN SOLUTION
        def offset(i, j):  # element (i, j) of every window of the images n, a view
            return x[n, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]

        best = offset(0, 0)  # the max so far (first a view of x)
        best_at = np.zeros(best.shape, dtype=np.min_scalar_type((ph - 1) * W + pw - 1))  # where: i*W + j
        for k in range(1, ph * pw):  # row-major window order: i * W + j grows with k
            i, j = k // pw, k % pw
            new_best = np.maximum(best, offset(i, j))
            grew = new_best > best  # strictly: a tie keeps the first max
            np.maximum(best_at, grew * best_at.dtype.type(i * W + j), out=best_at)  # best_at[grew] = i*W + j
            best = new_best
        out[n] = best
        planes = (np.arange(N)[n, None] * C + np.arange(C)) * (H * W)  # flat index of x[n, c, 0, 0]
        corners = (np.arange(H_out)[:, None] * W + np.arange(W_out)) * stride  # of each window's (0, 0) in a plane
        np.add(planes[:, :, None, None], corners, out=argmax[n])
        argmax[n] += best_at
        ### END SOLUTION

    for_batch_chunks(pool, N, x[0].nbytes)
    cache = LayerCache("max_pool_forward_fast", (x, pool_param, argmax))
    return out, cache


def max_pool_backward_fast(dout, cache):
    """Max-pooling backward pass: one scatter to the places of the maxima.

    The gradient of each output goes to its window's maximum: the first one in
    row-major window order if there are ties, exactly like torch and
    max_pool_backward_naive. Where windows overlap, contributions add up.

    Inputs:
    - dout: upstream gradient, (N, C, H_out, W_out)
    - cache: (x, pool_param, argmax) from max_pool_forward_fast (and no other
      layer: a naive cache has no argmax and is refused with a ValueError)

    Returns dx: gradient with respect to x, (N, C, H, W)

    The forward pass recorded where each window's max sits in x (argmax, flat
    indices), so dx is zero except at those places, where the window's dout
    goes: one scatter, dx.reshape(-1)[argmax] = dout. Where windows overlap
    (stride < pool_height or pool_width), two windows can share their max, and
    their gradients must add up: np.add.at adds at repeated indices, where
    plain assignment would keep only one of them. scatter(n) fills dx for the
    images n (chunks of the batch, as in the forward pass).
    """
    x, pool_param, argmax = open_cache(cache, "max_pool_forward_fast", "max_pool_backward_fast")
    ph, pw, stride, H_out, W_out = check_pool_args(x, pool_param)
    N, C, H, W = x.shape
    check_dout(dout, (N, C, H_out, W_out), "max_pool_backward_fast")
    dx = np.empty(x.shape, dtype=np.result_type(x, dout))  # (N, C, H, W)

    def scatter(n):  # fills dx[n] from dout[n] and argmax[n]
        # task2_6: max_pool_backward_fast
        ### BEGIN SOLUTION
        dx[n] = 0  # pixels that are no window's max
        dx_flat = dx.reshape(-1)  # a view: argmax indexes it
        if stride < ph or stride < pw:  # overlapping windows may share a max: add
            np.add.at(dx_flat, argmax[n], dout[n])
        else:  # every max belongs to one window
            dx_flat[argmax[n]] = dout[n]
        ### END SOLUTION

    for_batch_chunks(scatter, N, x[0].nbytes)
    return dx
