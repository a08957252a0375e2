"""load_mnist returns the book's arrays: shapes, dtypes, ranges, labels, forms."""
import numpy as np
import pytest

from compare import load_mnist


def test_default_form_is_the_books(mnist):
    (x_train, t_train), (x_test, t_test) = mnist
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert t_train.shape == (60000,) and t_train.dtype == np.uint8
    assert 0.0 == x_train.min() and x_train.max() == 1.0
    # the first labels of the official files
    assert list(t_train[:5]) == [5, 0, 4, 1, 9]
    assert list(t_test[:5]) == [7, 2, 1, 0, 4]
    # every class is there, in MNIST's proportions (5421 to 6742 per class)
    counts = np.bincount(t_train, minlength=10)
    assert counts.min() == 5421 and counts.max() == 6742


@pytest.mark.slow  # a whole process or a long run: seconds
def test_one_hot_and_unflattened_forms(mnist):
    (x_flat, t_idx), _ = mnist
    (x, t), (x_test, t_test) = load_mnist(one_hot_label=True, flatten=False, normalize=False,
                                          download=False)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == np.uint8 and x.max() == 255
    assert t.shape == (60000, 10) and t.dtype == np.float64
    np.testing.assert_array_equal(t.sum(axis=1), 1.0)
    np.testing.assert_array_equal(t.argmax(axis=1), t_idx)
    # normalize is x / 255 of the raw bytes, flatten is a reshape
    np.testing.assert_array_equal(x.reshape(60000, 784).astype(np.float32) / 255.0, x_flat)
    assert x_test.shape == (10000, 1, 28, 28) and t_test.shape == (10000, 10)


def test_missing_folder_without_download_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST_ROOT") as info:
        load_mnist(tmp_path / "nowhere", download=False)
    assert str(tmp_path / "nowhere") in str(info.value)
