"""The procedurally generated default dataset, "shapes" (given code).

Ten classes of shapes, each drawn at a random position, scale, rotation and
colour on a noisy, coloured, textured background, as (N, 3, 32, 32) images
with 0..255 pixel values like CIFAR-10. The class is the shape alone: where it
is, how big, how turned and what colour are all drawn independently of it, so
a classifier must recognise a local pattern wherever it appears. That is what
a convolution does and what a fully connected layer on raw pixels must learn
separately for every position.

Everything comes from one seed (numpy's PCG64), so `make_shapes(n, seed)`
returns the same images on every machine; 3,500 images take about a second.
"""
import numpy as np

SHAPE_NAMES = ("disc", "ring", "square", "frame", "triangle", "plus", "star", "bar",
               "two dots", "half disc")
IMAGE_SIZE = 32


def _mask(label, u, v):
    """Inside-the-shape mask of class `label` in the shape's own frame (u, v), radius about 1."""
    a, b = np.abs(u), np.abs(v)
    r2 = u * u + v * v
    box = np.maximum(a, b)
    if label == 0:
        return r2 < 1.0                                                   # disc
    if label == 1:
        return (r2 < 1.0) & (r2 > 0.3)                                    # ring
    if label == 2:
        return box < 0.8                                                  # square
    if label == 3:
        return (box < 0.9) & (box > 0.5)                                  # frame
    if label == 4:
        return (v > -0.5) & (v < 1.0 - np.sqrt(3.0) * a)                  # triangle
    if label == 5:
        return ((a < 0.3) & (b < 1.0)) | ((b < 0.3) & (a < 1.0))          # plus
    if label == 6:
        return r2 < (0.5 + 0.45 * np.cos(5 * np.arctan2(v, u))) ** 2      # five-pointed star
    if label == 7:
        return (a < 1.0) & (b < 0.28)                                     # bar
    if label == 8:
        return ((a - 0.55) ** 2 + v * v) < 0.16                           # two dots
    return (r2 < 1.0) & (v > 0.0)                                         # half disc


def _masks(u, v, labels):
    """Inside-the-shape masks of every image, (N, S, S) bool."""
    inside = np.zeros(u.shape, dtype=bool)
    for label in range(len(SHAPE_NAMES)):
        idx = np.flatnonzero(labels == label)
        inside[idx] = _mask(label, u[idx], v[idx])
    return inside


def _smooth_noise(rng, n, size, cells):
    """Low-frequency colour noise: a (cells+1)^2 random grid, bilinearly upsampled. (n, 3, S, S)"""
    grid = rng.standard_normal((n, 3, cells + 1, cells + 1), dtype=np.float32)
    t = np.linspace(0, cells, size, dtype=np.float32)
    hat = np.maximum(0, 1 - np.abs(t[:, None] - np.arange(cells + 1, dtype=np.float32)))  # (S, cells+1)
    return hat @ grid @ hat.T  # (n, 3, S, S)


def make_shapes(n, seed=0, size=IMAGE_SIZE):
    """`n` images of the shapes dataset, generated from `seed`.

    Labels cycle through the 10 classes in a shuffled order, so every class has
    n // 10 or n // 10 + 1 images.

    Returns:
    - X: uint8 (n, 3, size, size), pixel values 0..255
    - y: int64 (n,), class indices into SHAPE_NAMES
    """
    if n < 0 or size < 8:
        raise ValueError(f"make_shapes: n={n}, size={size}; n must be >= 0 and size >= 8")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SHAPE_NAMES)).astype(np.int64)
    scale = rng.uniform(0.2, 0.34, n) * size                       # radius in pixels
    margin = 0.6 * scale
    cx = rng.uniform(margin, size - 1 - margin)
    cy = rng.uniform(margin, size - 1 - margin)
    theta = rng.uniform(0, 2 * np.pi, n)
    coords = np.arange(size, dtype=np.float32)
    cx, cy, scale, theta = (t.astype(np.float32)[:, None, None] for t in (cx, cy, scale, theta))
    dx = (coords[None, None, :] - cx) / scale  # (n, 1, S)
    dy = (coords[None, :, None] - cy) / scale  # (n, S, 1)
    c, s = np.cos(theta), np.sin(theta)
    u = c * dx + s * dy  # (n, S, S)
    v = -s * dx + c * dy
    inside = _masks(u, v, y)[:, None]  # (n, 1, S, S)

    # Background: a random base colour, a smooth colour blotch pattern and stripes of random
    # orientation and period (texture), so edges and colour are everywhere, not only on the shape.
    base = rng.uniform(40, 215, (n, 3, 1, 1)).astype(np.float32)
    back = base + 30 * _smooth_noise(rng, n, size, 4)
    period = rng.uniform(3, 9, n).astype(np.float32)[:, None, None]
    alpha = rng.uniform(0, np.pi, n).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    xx, yy = np.meshgrid(coords, coords)
    stripes = np.sin(2 * np.pi * (np.cos(alpha) * xx + np.sin(alpha) * yy) / period + phase)
    back += rng.uniform(0, 25, (n, 1, 1, 1)).astype(np.float32) * stripes[:, None]
    # The shape: one random colour, far enough from the base colour to be seen, lightly shaded.
    colour = rng.uniform(0, 255, (n, 3, 1, 1)).astype(np.float32)
    too_close = np.linalg.norm((colour - base).reshape(n, 3), axis=1) < 120
    colour[too_close] = (base[too_close] + 128) % 256
    front = colour + 15 * _smooth_noise(rng, n, size, 2)
    X = np.where(inside, front, back)
    X += 12 * rng.standard_normal((n, 3, size, size), dtype=np.float32)
    np.clip(np.rint(X, out=X), 0, 255, out=X)
    return X.astype(np.uint8), y
