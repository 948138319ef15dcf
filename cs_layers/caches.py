"""Layer caches that remember which forward pass made them (given code).

A forward pass returns (out, cache) and its backward pass needs exactly that
cache. The fast layers keep more than the naive ones (the im2col columns, the
pooling argmax), so a cache only fits the backward pass of the layer that made
it. LayerCache is a plain tuple (it unpacks like one) tagged with the name of
the forward function that made it; every conv and pool backward pass opens its
cache with open_cache, which raises a ValueError saying what to pass instead
of failing later with a confusing unpacking or shape error.
"""


class LayerCache(tuple):
    """A tuple of cached values, tagged with the forward function that made it.

    LayerCache("conv_forward_fast", (x, w, b, conv_param, cols)) unpacks and
    indexes like the tuple (x, w, b, conv_param, cols); .made_by is the tag.
    """

    def __new__(cls, made_by, values):
        cache = super().__new__(cls, values)
        cache.made_by = str(made_by)
        return cache

    def __getnewargs__(self):  # copy, deepcopy and pickle rebuild the tag too
        return self.made_by, tuple(self)

    def __repr__(self):  # the tag and the sizes, not pages of array values
        sizes = ", ".join(type(v).__name__ + (f"{v.shape}" if hasattr(v, "shape") else "") for v in self)
        return f"LayerCache({self.made_by!r}: {sizes})"


def open_cache(cache, forward, backward, plain_size=None):
    """Return `cache` if the function named `forward` made it; raise ValueError otherwise.

    Inputs:
    - cache: what the caller passed to the backward pass
    - forward: name of the forward function whose cache `backward` needs
    - backward: name of the backward function (for the message)
    - plain_size: if set, a plain tuple (not a LayerCache) of this length is
      accepted too: the naive layers' documented caches, e.g. (x, w, b,
      conv_param), may be built by hand

    Returns the cache, ready to unpack.
    """
    if isinstance(cache, LayerCache):
        if cache.made_by == forward:
            return cache
        got = f"the cache of {cache.made_by}"
    elif plain_size is not None and isinstance(cache, tuple) and len(cache) == plain_size:
        return cache
    elif isinstance(cache, tuple):
        got = f"a plain tuple of {len(cache)} values"
    else:
        got = f"a {type(cache).__name__}"
    raise ValueError(
        f"{backward} got {got}; pass it the cache returned by {forward} (a cache only fits the "
        f"backward pass of the layer that made it: fast and naive caches hold different things)")
