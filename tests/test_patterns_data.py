"""The generated default dataset (cs_layers.synthetic, get_data's "patterns"): determinism,
shapes and dtypes, class balance, and that the class is the pattern, not where or what colour."""
import numpy as np
import pytest

from cs_layers import data as D
from cs_layers.synthetic import CLASS_NAMES, make_patterns


def test_same_seed_same_images_other_seed_other_images():
    X, y = make_patterns(60, seed=3)
    X2, y2 = make_patterns(60, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = make_patterns(60, seed=4)
    assert not np.array_equal(X, X3)


def test_pinned_fingerprint_so_a_change_that_alters_the_data_is_noticed():
    """The images every student trains on and the grader tests on. A change here changes the
    default dataset, and the targets measured on it (docs/tasks.md) must be measured again.
    The labels are exact; the pixel sum may move by a few levels between CPUs (the last bit of
    a float32 sine or a BLAS sum can tip a pixel at a rounding or pattern boundary)."""
    X, y = make_patterns(20, seed=0)
    assert y.tolist() == [4, 9, 6, 2, 3, 6, 3, 1, 0, 8, 0, 2, 7, 5, 8, 7, 4, 9, 1, 5], y.tolist()
    assert abs(int(X.astype(np.int64).sum()) - 8_170_883) < 2_000


def test_shapes_dtypes_and_range():
    X, y = make_patterns(25, seed=1)
    assert X.shape == (25, 3, 32, 32) and X.dtype == np.uint8
    assert y.shape == (25,) and y.dtype == np.int64 and set(y) <= set(range(10))
    assert X.min() >= 0 and X.max() <= 255 and X.std() > 20   # pictures, not blanks
    assert len(CLASS_NAMES) == 10 and make_patterns(0)[0].shape == (0, 3, 32, 32)
    with pytest.raises(ValueError, match="n must be"):
        make_patterns(-1)


@pytest.mark.parametrize("n", [10, 37, 200])
def test_every_class_gets_a_tenth(n):
    counts = np.bincount(make_patterns(n, seed=5)[1], minlength=10)
    assert counts.min() == n // 10 and counts.max() <= n // 10 + 1, counts


def test_neither_colour_nor_position_tells_the_class():
    """Per-class mean colour and the position of the patch's centre of contrast are about the
    same for every class: a shortcut that ignores the pattern would not work."""
    X, y = make_patterns(2000, seed=7)
    Xf = X.astype(np.float64)
    colour = np.array([Xf[y == c].mean(axis=(0, 2, 3)) for c in range(10)])   # (10, 3)
    assert np.ptp(colour, axis=0).max() < 12, colour
    contrast = np.abs(Xf - np.median(Xf, axis=(2, 3), keepdims=True)).sum(axis=1)   # (N, 32, 32)
    rows = (contrast.sum(axis=2) * np.arange(32)).sum(axis=1) / contrast.sum(axis=(1, 2))
    centre = np.array([rows[y == c].mean() for c in range(10)])
    assert np.ptp(centre) < 1.5, centre


def test_load_patterns_split_dict():
    d = D.load_patterns(num_training=50, num_validation=20, num_test=30)
    assert d["name"] == "patterns" and d["class_names"] == list(CLASS_NAMES)
    assert [len(d[k]) for k in ("X_train", "X_val", "X_test")] == [50, 20, 30]
    assert d["X_train"].shape[1:] == (3, 32, 32) and d["X_train"].dtype == np.float32
    assert d["y_test"].dtype == np.int64
    np.testing.assert_allclose(d["X_train"].mean(axis=0), 0, atol=1e-3)
    for split, n in (("y_val", 20), ("y_test", 30)):
        assert (np.bincount(d[split], minlength=10) == n // 10).all()
    # val and test do not depend on the size of the training split, and differ from it
    other = D.load_patterns(num_training=10, num_validation=20, num_test=30, subtract_mean=False)
    np.testing.assert_allclose(other["X_test"], d["X_test"] * d["pixel_std"] + d["mean_image"], atol=1e-3)
    assert other["pixel_std"] == 1.0 and 30 < d["pixel_std"] < 120   # unit scale: one global std
    np.testing.assert_allclose(d["X_train"].std(), 1.0, rtol=1e-4)
    assert not np.array_equal(other["X_val"][:10], other["X_train"][:10])
    with pytest.raises(ValueError, match="num_training"):
        D.load_patterns(num_training=0)

