"""NumPy nets written features first with no layers, as learners write them: inputs ``X``
``(features, examples)``, weights ``W`` ``(out, in)``, biases ``b`` ``(out, 1)``, each layer
``Z = W @ A + b`` in the forward's own lines.

``CourseInlineNet``: the deeplearning.ai course's ``L_model_forward`` written inline (a loop
over the layers, ReLU then a sigmoid, ``AL``), its cost ``-(Y log AL + (1 - Y) log(1 - AL))
/ m``. ``NetworkStyleNet``: a ``feedforward`` of one line per layer, ``a = sigmoid(np.dot(w, a)
+ b)``, lists of ``weights`` and ``biases``, a cross-entropy cost summed over the outputs and
the examples (one-hot ``y``), per example. ``ArchitectureNet``: a dict of parameters and an
architecture list, each layer's ``Z_curr`` and activation in a function of its own, its cost
with ``log(Y_hat + 0.001)``; its last bias outweighs the rest, so every last ``Z`` is positive
(a ReLU after it would do nothing on the batch). ``CourseSoftmaxNet``: a softmax over the
classes, its cost with ``log(AL + 1e-8)``.
"""
import numpy as np

D, H, C = 6, 5, 3


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


class CourseInlineNet:
    def __init__(self, dims=(D, H, 4, 1), seed=1):
        rng = np.random.RandomState(seed)
        self.params = {}
        for l in range(1, len(dims)):
            self.params[f"W{l}"] = rng.randn(dims[l], dims[l - 1]) / np.sqrt(dims[l - 1])
            self.params[f"b{l}"] = 0.1 * rng.randn(dims[l], 1)
        self.L = len(dims) - 1

    def predict(self, X):
        A = X
        for l in range(1, self.L):
            Z = self.params[f"W{l}"] @ A + self.params[f"b{l}"]
            A = np.maximum(0, Z)
        ZL = self.params[f"W{self.L}"] @ A + self.params[f"b{self.L}"]
        AL = 1 / (1 + np.exp(-ZL))
        return AL

    def loss(self, X, Y):
        AL = self.predict(X)
        m = Y.shape[1]
        cost = -(np.dot(Y, np.log(AL).T) + np.dot(1 - Y, np.log(1 - AL).T)) / m
        return float(np.squeeze(cost))


class NetworkStyleNet:
    def __init__(self, sizes=(D, H, C), seed=2):
        rng = np.random.RandomState(seed)
        self.biases = [rng.randn(y, 1) for y in sizes[1:]]
        self.weights = [rng.randn(y, x) / np.sqrt(x) for x, y in zip(sizes[:-1], sizes[1:])]
        self.params = {}
        for l, (w, b) in enumerate(zip(self.weights, self.biases), 1):
            self.params[f"W{l}"], self.params[f"b{l}"] = w, b

    def feedforward(self, a):
        weights = [self.params[f"W{l}"] for l in range(1, len(self.weights) + 1)]
        biases = [self.params[f"b{l}"] for l in range(1, len(self.biases) + 1)]
        for b, w in zip(biases, weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    predict = feedforward

    def loss(self, x, y):
        a = self.feedforward(x)
        return np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a))) / x.shape[1]


class CourseSoftmaxNet:
    """The course's softmax output written inline: ``AL`` the softmax over the classes (axis
    0), its cost ``-sum(Y log(AL + 1e-8)) / m`` on one-hot ``Y`` (C, m)."""

    def __init__(self, dims=(D, H, C), seed=4):
        rng = np.random.RandomState(seed)
        self.params = {"W1": rng.randn(dims[1], dims[0]) / np.sqrt(dims[0]), "b1": 0.1 * rng.randn(dims[1], 1),
                       "W2": rng.randn(dims[2], dims[1]) / np.sqrt(dims[1]), "b2": 0.1 * rng.randn(dims[2], 1)}

    def predict(self, X):
        p = self.params
        A1 = np.tanh(np.dot(p["W1"], X) + p["b1"])
        Z2 = np.dot(p["W2"], A1) + p["b2"]
        e = np.exp(Z2 - np.max(Z2, axis=0, keepdims=True))
        return e / np.sum(e, axis=0, keepdims=True)

    def loss(self, X, Y, eps=1e-8):
        AL = self.predict(X)
        return float(-np.sum(Y * np.log(AL + eps)) / X.shape[1])


ARCHITECTURE = [{"input_dim": D, "output_dim": H, "activation": "relu"},
                {"input_dim": H, "output_dim": 4, "activation": "relu"},
                {"input_dim": 4, "output_dim": 1, "activation": "sigmoid"}]


def relu(Z):
    return np.maximum(0, Z)


def single_layer_forward(A_prev, W_curr, b_curr, activation):
    Z_curr = np.dot(W_curr, A_prev) + b_curr
    activation_func = relu if activation == "relu" else sigmoid
    return activation_func(Z_curr), Z_curr


class ArchitectureNet:
    def __init__(self, seed=3):
        rng = np.random.RandomState(seed)
        self.params = {}
        for i, layer in enumerate(ARCHITECTURE, 1):
            self.params[f"W{i}"] = 0.3 * rng.randn(layer["output_dim"], layer["input_dim"])
            self.params[f"b{i}"] = 0.1 * rng.randn(layer["output_dim"], 1)
        self.params[f"b{len(ARCHITECTURE)}"][:] = 2.0

    def predict(self, X):
        A_curr = X
        for i, layer in enumerate(ARCHITECTURE, 1):
            A_prev = A_curr
            A_curr, Z_curr = single_layer_forward(A_prev, self.params[f"W{i}"], self.params[f"b{i}"],
                                                  layer["activation"])
        return A_curr

    def loss(self, X, Y, eps=0.001):
        Y_hat = self.predict(X)
        m = Y_hat.shape[1]
        Y = Y.reshape(Y_hat.shape)
        cost = -1 / m * (np.dot(Y, np.log(Y_hat + eps).T) + np.dot(1 - Y, np.log(1 - Y_hat + eps).T))
        return float(np.squeeze(cost))


def batch(classes=1, n=12, seed=0):
    """``x`` (n, D) batch first, as the checker hands it (transposed to the nets); ``t``: 0/1
    targets (n,) for one output, class indices (n,) for more."""
    rng = np.random.RandomState(seed)
    x = rng.randn(n, D)
    if classes == 1:
        return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    return x, rng.randint(0, classes, n)
