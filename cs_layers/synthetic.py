"""The procedurally generated default dataset, "patterns" (given code).

Ten classes of patterns: stripes at four orientations, a checkerboard, dots,
a solid fill, a grid, a diagonal grid and concentric rings. Each image holds one
patch (a disc or a square) filled with its pattern in two random colours, at a
random position, size and pattern phase, on a smooth, noisy background of a
random colour; (N, 3, 32, 32) images with 0..255 pixel values like CIFAR-10.

The class is the local pattern alone: where the patch is, how big, its outline,
its colours and where the stripes start are all drawn independently of it. A
small filter that responds to, say, vertical edges finds them wherever they are;
that is what a convolution learns. A fully connected layer on raw pixels has to
learn every position (and every phase) separately, and mostly cannot.

Everything comes from one seed (numpy's PCG64), so `make_patterns(n, seed)`
returns the same images on every machine (up to a pixel tipped by one level
where a CPU rounds a float32 differently).
"""
import numpy as np

CLASS_NAMES = ("stripes |", "stripes /", "stripes -", "stripes \\", "checkerboard", "dots",
               "solid", "grid", "diagonal grid", "rings")
IMAGE_SIZE = 32
PATCH_RADIUS = (0.3, 0.45)   # half the patch's side, as a fraction of the image size
PERIOD = (5.0, 8.0)          # pixels per cycle of the pattern
MIN_CONTRAST = 100           # mean brightness difference of ink and paper, 0..255
NOISE = 6                    # standard deviation of the pixel noise


def _pattern(label, u, v, r, period):
    """1 where the pattern of class `label` is ink, 0 where it is paper; coordinates in pixels."""
    w = 2 * np.pi / period
    d1, d2 = (u + v) / np.sqrt(2), (u - v) / np.sqrt(2)
    if label < 4:                                                  # stripes at 0, 45, 90, 135 degrees
        t = (u, d1, v, d2)[label]
        return np.sin(w * t) > 0
    if label == 4:
        return np.sin(w * u) * np.sin(w * v) > 0                    # checkerboard
    if label == 5:
        return np.cos(w * u) + np.cos(w * v) > 1.0                  # dots on a square lattice
    if label == 6:
        return np.ones(u.shape, dtype=bool)                         # solid
    if label == 7:
        return (np.cos(w * u) > 0.6) | (np.cos(w * v) > 0.6)        # grid of thin lines
    if label == 8:
        return (np.cos(w * d1) > 0.6) | (np.cos(w * d2) > 0.6)      # diagonal grid
    return np.sin(w * r) > 0                                        # concentric rings


def _masks(u, v, labels, period):
    """Ink masks of every image, (N, S, S) bool."""
    r = np.sqrt(u * u + v * v)
    ink = np.zeros(u.shape, dtype=bool)
    for label in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(labels == label)
        ink[idx] = _pattern(label, u[idx], v[idx], r[idx], period[idx])
    return ink


def _smooth_noise(rng, n, size, cells):
    """Low-frequency colour noise: a (cells+1)^2 random grid, bilinearly upsampled. (n, 3, S, S)"""
    grid = rng.standard_normal((n, 3, cells + 1, cells + 1), dtype=np.float32)
    t = np.linspace(0, cells, size, dtype=np.float32)
    hat = np.maximum(0, 1 - np.abs(t[:, None] - np.arange(cells + 1, dtype=np.float32)))  # (S, cells+1)
    return hat @ grid @ hat.T  # (n, 3, S, S)


def make_patterns(n, seed=0, size=IMAGE_SIZE):
    """`n` images of the patterns dataset, generated from `seed`.

    Labels cycle through the 10 classes in a shuffled order, so every class has
    n // 10 or n // 10 + 1 images.

    Returns:
    - X: uint8 (n, 3, size, size), pixel values 0..255
    - y: int64 (n,), class indices into CLASS_NAMES
    """
    if n < 0 or size < 8:
        raise ValueError(f"make_patterns: n={n}, size={size}; n must be >= 0 and size >= 8")
    f32 = np.float32
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
    radius = rng.uniform(*PATCH_RADIUS, n) * size                       # half the patch's side, pixels
    cx = rng.uniform(radius * 0.8, size - 1 - radius * 0.8)
    cy = rng.uniform(radius * 0.8, size - 1 - radius * 0.8)
    period = rng.uniform(*PERIOD, n)
    phase_u, phase_v = rng.uniform(0, 8, n), rng.uniform(0, 8, n)  # where the pattern starts
    round_patch = rng.random(n) < 0.5                              # a disc or a square patch
    coords = np.arange(size, dtype=f32)
    col = lambda a: a.astype(f32)[:, None, None]                   # noqa: E731  (n,) -> (n, 1, 1)
    du = np.broadcast_to(coords[None, None, :] - col(cx), (n, size, size))  # (n, S, S) column offset
    dv = np.broadcast_to(coords[None, :, None] - col(cy), (n, size, size))  # (n, S, S) row offset
    inside = np.where(col(round_patch), du * du + dv * dv < col(radius) ** 2,
                      np.maximum(np.abs(du), np.abs(dv)) < col(radius) * 0.9)  # (n, S, S)
    ink = _masks(du + col(phase_u), dv + col(phase_v), y, col(period))
    ink[y == 9] = _masks(du[y == 9], dv[y == 9], y[y == 9], col(period[y == 9]))  # rings: centred

    # Colours: background, paper and ink all random; ink and paper differ clearly in brightness.
    base = rng.uniform(30, 225, (n, 3, 1, 1)).astype(f32)
    back = base + 20 * _smooth_noise(rng, n, size, 3)
    paper = rng.uniform(0, 255, (n, 3, 1, 1)).astype(f32)
    ink_colour = rng.uniform(0, 255, (n, 3, 1, 1)).astype(f32)
    weak = np.abs((paper - ink_colour).mean(axis=(1, 2, 3))) < MIN_CONTRAST
    ink_colour[weak] = (paper[weak] + 128) % 256
    front = np.where(ink[:, None], ink_colour, paper)
    X = np.where(inside[:, None], front, back)
    X += NOISE * rng.standard_normal((n, 3, size, size), dtype=f32)
    np.clip(np.rint(X, out=X), 0, 255, out=X)
    return X.astype(np.uint8), y
