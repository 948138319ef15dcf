"""Fixtures shared by the public tests: torch as the answer key."""
import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def torch_vjp():
    """Run a torch function forward and backward, in float64.

    Usage: out, grads = torch_vjp(fn, [x, w, b], dout)
    - fn: takes torch tensors in the order of the arrays, returns one tensor
    - arrays: numpy arrays (copied; never modified)
    - dout: upstream gradient for the output, or None for forward only
    Returns out as a numpy array and the list of gradients (numpy arrays),
    one per input array (empty when dout is None).
    """
    def run(fn, arrays, dout=None):
        tensors = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=dout is not None)
                   for a in arrays]
        out = fn(*tensors)
        if dout is None:
            return out.detach().numpy(), []
        out.backward(torch.tensor(np.asarray(dout, dtype=np.float64)))
        return out.detach().numpy(), [t.grad.numpy() for t in tensors]
    return run


@pytest.fixture(scope="session")
def term_scale(torch_vjp):
    """The conditioning of a multilinear layer (conv, affine): torch_vjp of |inputs| and |dout|.

    Each output and gradient of such a layer is a sum of products; run on the
    absolute values, the same layer gives, per element, the sum of the absolute
    values of its terms. Rounding errors are relative to that sum, not to the
    result (which can cancel to nearly zero), so it is the `scale` to pass to
    check_close. Same call and return as torch_vjp.
    """
    def run(fn, arrays, dout=None):
        return torch_vjp(fn, [np.abs(a) for a in arrays], None if dout is None else np.abs(dout))
    return run
