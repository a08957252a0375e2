"""A sequence model in the deeplearning.ai sequence course's style, written here: features
first (``x`` ``(n_x, m, T_x)``), one matrix per LSTM gate on the concatenation ``[a_prev; x]``
(``Wf``, ``Wi``, ``Wc``, ``Wo`` ``(n_a, n_a + n_x)``, biases ``(n_a, 1)``), a softmax output
``y_pred`` ``(n_y, m, T_x)``; the RNN cell with ``Wax``, ``Waa``, ``ba``. The course's
functions have no loss: the adapter, as a learner writes it, adds the cross-entropy summed
over the steps and averaged over the examples; no gradient (the check takes central
differences of the loss). ``concat="xa"`` builds a cell on ``[x; a_prev]`` instead."""
import numpy as np

N_X, N_A, N_Y = 3, 4, 5


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def lstm_cell_forward(xt, a_prev, c_prev, p, concat="ax"):
    both = np.concatenate((a_prev, xt) if concat == "ax" else (xt, a_prev), axis=0)
    ft = sigmoid(p["Wf"] @ both + p["bf"])
    it = sigmoid(p["Wi"] @ both + p["bi"])
    cct = np.tanh(p["Wc"] @ both + p["bc"])
    c_next = ft * c_prev + it * cct
    ot = sigmoid(p["Wo"] @ both + p["bo"])
    a_next = ot * np.tanh(c_next)
    return a_next, c_next, softmax(p["Wy"] @ a_next + p["by"])


def rnn_cell_forward(xt, a_prev, p):
    a_next = np.tanh(p["Wax"] @ xt + p["Waa"] @ a_prev + p["ba"])
    return a_next, softmax(p["Wya"] @ a_next + p["by"])


class CourseLSTM:
    def __init__(self, seed=0, concat="ax"):
        r = np.random.RandomState(seed)
        self.concat = concat
        self.params = {}
        for g in "fico":
            self.params[f"W{g}"] = r.randn(N_A, N_A + N_X) * 0.5
            self.params[f"b{g}"] = r.randn(N_A, 1) * 0.5
        self.params["Wy"], self.params["by"] = r.randn(N_Y, N_A), r.randn(N_Y, 1) * 0.5

    def predict(self, x):
        n_x, m, steps = x.shape
        a, c = np.zeros((N_A, m)), np.zeros((N_A, m))
        y = np.zeros((N_Y, m, steps))
        for t in range(steps):
            a, c, y[:, :, t] = lstm_cell_forward(x[:, :, t], a, c, self.params, self.concat)
        return y

    def loss(self, x, Y):
        y = self.predict(x)
        return float(-np.sum(Y * np.log(y)) / x.shape[1])


class CourseRNN:
    def __init__(self, seed=0):
        r = np.random.RandomState(seed)
        self.params = {"Wax": r.randn(N_A, N_X) * 0.5, "Waa": r.randn(N_A, N_A) * 0.5,
                       "ba": r.randn(N_A, 1) * 0.5, "Wya": r.randn(N_Y, N_A),
                       "by": r.randn(N_Y, 1) * 0.5}

    def predict(self, x):
        n_x, m, steps = x.shape
        a, y = np.zeros((N_A, m)), np.zeros((N_Y, m, steps))
        for t in range(steps):
            a, y[:, :, t] = rnn_cell_forward(x[:, :, t], a, self.params)
        return y

    def loss(self, x, Y):
        return float(-np.sum(Y * np.log(self.predict(x))) / x.shape[1])


def batch(m=3, steps=4, seed=1):
    """Batch first, as the check hands both sides: x (m, T, n_x), t (m, T) token ids."""
    r = np.random.RandomState(seed)
    return r.randn(m, steps, N_X), r.randint(0, N_Y, (m, steps))
