"""The book's chapter-4 code as the book writes it, kept here only to be timed against.

``common/functions.py``, ``common/gradient.py`` (the ``nditer`` loop),
``ch04/two_layer_net.py``, ``ch04/train_neuralnet.py`` and the loader of
``dataset/mnist.py``, in the book's form: float32 images from
``load_mnist(normalize=True)`` meet float64 weights, labels are one-hot, and
the numerical gradient walks every weight.

Run as a file, ``python compare/ch4/book_reference.py --pickle mnist.pkl
--raw MNIST/raw``, it is the book's training script as a process, importing
what the book's imports (NumPy, matplotlib) and nothing of this project:
the first run reads the four files into the pickle, later runs load it.
"""
import os
import pickle

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    return (1.0 - sigmoid(x)) * sigmoid(x)


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def numerical_gradient(f, x):
    h = 1e-4
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)
        x[idx] = tmp_val - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val
        it.iternext()
    return grad


class BookTwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, rng=np.random):
        self.params = {}
        self.params["W1"] = weight_init_std * rng.randn(input_size, hidden_size)
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = weight_init_std * rng.randn(hidden_size, output_size)
        self.params["b2"] = np.zeros(output_size)

    def predict(self, x):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        return softmax(a2)

    def loss(self, x, t):
        y = self.predict(x)
        return cross_entropy_error(y, t)

    def accuracy(self, x, t):
        y = self.predict(x)
        y = np.argmax(y, axis=1)
        t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def numerical_gradient(self, x, t):
        loss_W = lambda W: self.loss(x, t)  # noqa: E731
        grads = {}
        for key in ("W1", "b1", "W2", "b2"):
            grads[key] = numerical_gradient(loss_W, self.params[key])
        return grads

    def gradient(self, x, t):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        grads = {}
        batch_num = x.shape[0]
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)
        dy = (y - t) / batch_num
        grads["W2"] = np.dot(z1.T, dy)
        grads["b2"] = np.sum(dy, axis=0)
        da1 = np.dot(dy, W2.T)
        dz1 = sigmoid_grad(a1) * da1
        grads["W1"] = np.dot(x.T, dz1)
        grads["b1"] = np.sum(dz1, axis=0)
        return grads


def book_train(x_train, t_train, x_test, t_test, iters_num=10000, seed=0, echo=False):
    """ch04/train_neuralnet.py after ``np.random.seed(seed)``; one-hot labels.
    ``echo`` prints each evaluation, as the book's script does."""
    rng = np.random.RandomState(seed)
    network = BookTwoLayerNet(input_size=784, hidden_size=50, output_size=10, rng=rng)
    train_size = x_train.shape[0]
    batch_size = 100
    learning_rate = 0.1
    train_loss_list, train_acc_list, test_acc_list = [], [], []
    iter_per_epoch = max(train_size / batch_size, 1)
    for i in range(iters_num):
        batch_mask = rng.choice(train_size, batch_size)
        x_batch = x_train[batch_mask]
        t_batch = t_train[batch_mask]
        grad = network.gradient(x_batch, t_batch)
        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= learning_rate * grad[key]
        loss = network.loss(x_batch, t_batch)
        train_loss_list.append(loss)
        if i % iter_per_epoch == 0:
            train_acc_list.append(network.accuracy(x_train, t_train))
            test_acc_list.append(network.accuracy(x_test, t_test))
            if echo:
                print("train acc, test acc | " + str(train_acc_list[-1]) + ", "
                      + str(test_acc_list[-1]))
    return {"train_loss": train_loss_list, "train_acc": train_acc_list, "test_acc": test_acc_list}


# -- dataset/mnist.py, from the files torchvision keeps unpacked --------------

BOOK_FILES = {"train_img": ("train-images-idx3-ubyte", 16),
              "train_label": ("train-labels-idx1-ubyte", 8),
              "test_img": ("t10k-images-idx3-ubyte", 16),
              "test_label": ("t10k-labels-idx1-ubyte", 8)}


def book_init_mnist(raw_dir, save_file):
    """``init_mnist``: the four files read once and pickled (the book reads the
    ``.gz`` downloads with ``gzip.open``; these are the same bytes unpacked)."""
    dataset = {}
    for key, (name, offset) in BOOK_FILES.items():
        with open(os.path.join(raw_dir, name), "rb") as f:
            data = np.frombuffer(f.read(), np.uint8, offset=offset)
        dataset[key] = data.reshape(-1, 784) if offset == 16 else data
    with open(save_file, "wb") as f:
        pickle.dump(dataset, f, -1)


def _change_one_hot_label(X):
    T = np.zeros((X.size, 10))
    for idx, row in enumerate(T):
        row[X[idx]] = 1
    return T


def book_load_mnist(save_file, normalize=True, flatten=True, one_hot_label=False):
    """``load_mnist``, from the pickle ``book_init_mnist`` wrote."""
    with open(save_file, "rb") as f:
        dataset = pickle.load(f)
    if normalize:
        for key in ("train_img", "test_img"):
            dataset[key] = dataset[key].astype(np.float32)
            dataset[key] /= 255.0
    if one_hot_label:
        dataset["train_label"] = _change_one_hot_label(dataset["train_label"])
        dataset["test_label"] = _change_one_hot_label(dataset["test_label"])
    if not flatten:
        for key in ("train_img", "test_img"):
            dataset[key] = dataset[key].reshape(-1, 1, 28, 28)
    return ((dataset["train_img"], dataset["train_label"]),
            (dataset["test_img"], dataset["test_label"]))


def book_script(argv=None):
    """ch04/train_neuralnet.py as a process; ``--iters`` and ``--seed`` as the project's script."""
    import argparse

    parser = argparse.ArgumentParser(description="The book's ch04/train_neuralnet.py.")
    parser.add_argument("--pickle", required=True, help="the book's mnist.pkl (made if absent)")
    parser.add_argument("--raw", help="the folder of the four *-ubyte files, for a new pickle")
    parser.add_argument("--iters", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-plot", action="store_true", help="skip matplotlib and the plot")
    args = parser.parse_args(argv)
    # what dataset/mnist.py imports at its top, for the download
    import gzip  # noqa: F401
    import urllib.request  # noqa: F401
    if not args.no_plot:
        import matplotlib.pyplot as plt

    if not os.path.exists(args.pickle):
        book_init_mnist(args.raw, args.pickle)
    (x_train, t_train), (x_test, t_test) = book_load_mnist(args.pickle, normalize=True,
                                                           one_hot_label=True)
    hist = book_train(x_train, t_train, x_test, t_test, args.iters, args.seed, echo=True)
    if not args.no_plot:
        x = np.arange(len(hist["train_acc"]))
        plt.plot(x, hist["train_acc"], label="train acc")
        plt.plot(x, hist["test_acc"], label="test acc", linestyle="--")
        plt.xlabel("epochs")
        plt.ylabel("accuracy")
        plt.ylim(0, 1.0)
        plt.legend(loc="lower right")
        plt.show()


if __name__ == "__main__":
    book_script()
