"""A two-layer net in the style of cs231n's assignment 1: affine, ReLU, affine, softmax.

Written here, in NumPy, as a completed assignment looks: the whole forward
and backward pass inside ``loss``, which gives the scores ``(N, C)`` when
``y`` is None and ``(loss, grads)`` when it is given, ``y`` being class
indices ``(N,)``; ``predict`` gives labels, never scores. ``params`` holds
``W1`` ``(D, H)``, ``b1`` ``(H,)``, ``W2`` ``(H, C)``, ``b2`` ``(C,)``.

Regularisation follows assignment 1's convention, ``reg * (sum W1**2 + sum
W2**2)`` with no one half, so its gradient is ``2 * reg * W``; biases are
not regularised. Assignment 2's nets write ``0.5 * reg * sum W**2``
(``cs231n_fc_net``): a port that takes one convention for the other
differs by a weight-decay term, ``0.5 * reg * sum W**2`` in the loss and
``reg * W`` in each weight's gradient.

    python -m compare port tests/courses/cs231n_two_layer.py:make_net \\
                           tests/courses/torch_ports.py:A1Port
"""
import numpy as np


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, std=1e-4, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {}
        self.params["W1"] = std * rng.randn(input_size, hidden_size)
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = std * rng.randn(hidden_size, output_size)
        self.params["b2"] = np.zeros(output_size)

    def loss(self, X, y=None, reg=0.0):
        W1, b1 = self.params["W1"], self.params["b1"]
        W2, b2 = self.params["W2"], self.params["b2"]
        N = X.shape[0]

        hidden = np.maximum(0, X.dot(W1) + b1)
        scores = hidden.dot(W2) + b2
        if y is None:
            return scores

        # shifted by the row maximum so that exp never overflows
        shifted = scores - np.max(scores, axis=1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        loss = -np.sum(log_probs[np.arange(N), y]) / N
        loss += reg * (np.sum(W1 * W1) + np.sum(W2 * W2))

        grads = {}
        dscores = np.exp(log_probs)
        dscores[np.arange(N), y] -= 1
        dscores /= N
        grads["W2"] = hidden.T.dot(dscores) + 2 * reg * W2
        grads["b2"] = np.sum(dscores, axis=0)
        dhidden = dscores.dot(W2.T)
        dhidden[hidden <= 0] = 0
        grads["W1"] = X.T.dot(dhidden) + 2 * reg * W1
        grads["b1"] = np.sum(dhidden, axis=0)
        return loss, grads

    def predict(self, X):
        return np.argmax(self.loss(X), axis=1)


def make_net():
    """784-50-10 on MNIST, the course's initial scale ``std=1e-4``."""
    return TwoLayerNet(784, 50, 10)
