"""The figures: each PNG is written, opens, has a sensible size and is not blank.

(The four book figures are drawn through the CLI in test_cli.py.)
"""
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

import numpy_impl
from compare import check_gradient_paths, compare_curves
from compare.ch4.figures import descent_paths, difference_errors, parity_figures
from compare.ch4.paths import book_batch


def assert_drawn(path, min_size=(300, 300)):
    image = imread(path)
    height, width = image.shape[:2]
    assert width >= min_size[0] and height >= min_size[1], (path, image.shape)
    rgb = image[..., :3]
    ink = np.any(rgb < 0.9, axis=-1).mean()  # share of pixels that are not near-white
    assert 0.01 < ink < 0.9, (path, ink)
    assert rgb.std() > 0.05, path  # not a flat colour


def test_a_blank_canvas_does_not_count_as_drawn(tmp_path):
    blank = tmp_path / "blank.png"
    Figure(figsize=(4, 4)).savefig(blank)
    with pytest.raises(AssertionError):
        assert_drawn(blank)


@pytest.mark.slow  # a whole process or a long run: seconds
def test_parity_figures(tmp_path, mnist):
    (x_train, t_train), (x_test, t_test) = mnist
    small = (x_train[:1000], t_train[:1000]), (x_test[:200], t_test[:200])
    curves = compare_curves(small, iters=30, eval_every=10, progress=False)
    pairs = (("torch backprop", "numpy backprop", "analytic", False),
             ("numpy numerical", "numpy backprop", "numerical", True))
    paths = check_gradient_paths(*book_batch(mnist, batch_size=10), pairs=pairs)
    made = parity_figures(tmp_path, curves.to_dict(), paths)
    assert set(made) == {"accuracy.png", "loss_parity.png", "gradient_errors.png"}
    for path in made.values():
        assert_drawn(path)


# --- what the figures show, checked against independent truth -----------------------------

def test_descent_paths_are_the_books():
    paths = descent_paths()
    # the book's printed results (section 4.4.1)
    assert np.allclose(paths[0.1][0], [-6.1e-10, 8.1e-10], atol=1e-10)
    assert paths[10.0][0] == pytest.approx([-2.58983747e13, -1.29524862e12], rel=1e-8)
    assert paths[1e-10][0] == pytest.approx([-2.99999994, 3.99999992], rel=1e-8)


def test_step_size_study_shows_truncation_round_off_and_the_vanishing_step():
    s1 = float(numpy_impl.sigmoid(1.0))

    def exact(x):
        return s1 * (1 - s1)
    steps = np.array([1e-1, 1e-4, 1e-16])
    c64, f64 = difference_errors(numpy_impl.sigmoid, exact, 1.0, "float64", steps)
    c32, _ = difference_errors(numpy_impl.sigmoid, exact, 1.0, "float32", steps)
    # truncation at h = 0.1: central ~ h^2 |f'''| / (6 |f'|), forward ~ h |f''| / (2 |f'|)
    f2 = s1 * (1 - s1) * (1 - 2 * s1)
    f3 = s1 * (1 - s1) * (1 - 6 * s1 + 6 * s1 ** 2)
    assert c64[0] == pytest.approx(abs(f3) * 1e-2 / 6 / exact(1), rel=0.05)
    assert f64[0] == pytest.approx(abs(f2) * 1e-1 / 2 / exact(1), rel=0.1)
    # the book's h = 1e-4 is good in float64, poor in float32 (round-off eps32 |f| / h ~ 1e-3)
    assert c64[1] < 1e-9 and c32[1] > 1e-5
    # h = 1e-16: 1 + h == 1 in float64, the difference is 0 and the error 100%
    assert c64[2] == 1.0 and f64[2] == 1.0
