"""The two-layer network as a PyTorch user writes it: ``nn.Module``, autograd.

Same architecture, same initial weights and the same batches as the book's
``TwoLayerNet``, but ``nn.Linear`` layers, a forward pass that returns
logits, gradients from ``torch.autograd`` and updates from
``torch.optim.SGD`` (see ``train``).

The loss. The default, ``loss="cross_entropy"``, is ``F.cross_entropy`` on
the logits: the cross-entropy without the book's ``1e-7``, the function
whose exact gradient is the book's backprop ``(y - t) / batch``, so this
module's gradients match ``TwoLayerNet.gradient`` to round-off.
``loss="book"`` is softmax then the book's ``-log(y + 1e-7)``, the value
``TwoLayerNet.loss`` reports. The two differ by exactly
``mean(log(1 + 1e-7 / y_t))``, about ``1e-7 / y`` with ``y`` near 0.1 at
initialisation: on the first 100 MNIST training images with seed 0 the
book's loss is 2.3051331 and ``F.cross_entropy`` is 1.003e-6 above it,
4.4e-7 relative (checked in tests/test_torch_module.py).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .functions import _cross_entropy_error
from .random_stream import book_initial_params
from .two_layer_net import PARAM_NAMES, _as_indices, _device, _dtype
from .validation import (as_float_tensor, check_batch, check_inputs, check_nonnegative,
                         check_positive_int)

LOSSES = ("cross_entropy", "book")


class TwoLayerNetModule(nn.Module):
    """Linear, sigmoid, Linear; ``forward`` returns logits.

    ``loss="cross_entropy"`` (the default) trains on ``F.cross_entropy`` of
    the logits; ``loss="book"`` on the book's ``-log(softmax + 1e-7)``.
    ``seed`` draws the book's initial weights, as ``TwoLayerNet`` does.
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01,
                 *, seed=None, dtype=torch.float64, device=None, loss="cross_entropy"):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("output_size", output_size)):
            check_positive_int(value, name)
        check_nonnegative(weight_init_std, "weight_init_std")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        dtype = _dtype(dtype)
        self.loss_name = loss
        # The book's weights replace nn.Linear's own initialisation, so skip it
        # (which also leaves torch's global generator untouched).
        kwargs = {"dtype": dtype, "device": _device(device)}
        self.linear1 = nn.utils.skip_init(nn.Linear, input_size, hidden_size, **kwargs)
        self.linear2 = nn.utils.skip_init(nn.Linear, hidden_size, output_size, **kwargs)
        self.load_params(book_initial_params(input_size, hidden_size, output_size,
                                             weight_init_std, seed=seed, dtype=dtype))

    @classmethod
    def from_params(cls, params, *, dtype=None, device=None, loss="cross_entropy"):
        """A module holding ``params`` (the book's layout: ``W1`` is (in, hidden)).

        ``dtype`` and ``device`` default to those of ``params["W1"]``.
        """
        W1, W2 = _param(params, "W1"), _param(params, "W2")
        if W1.dim() != 2 or W2.dim() != 2:
            raise ValueError("params['W1'] and params['W2'] must be 2-D")
        net = cls(W1.shape[0], W1.shape[1], W2.shape[1],
                  dtype=W1.dtype if dtype is None else dtype,
                  device=W1.device if device is None else device, loss=loss)
        return net.load_params(params)

    def load_params(self, params):
        """Copy a ``params`` dict (``W1``, ``b1``, ``W2``, ``b2``, the book's layout) in."""
        if not isinstance(params, dict) or set(params) != set(PARAM_NAMES):
            keys = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise ValueError(f"params must be a dict with keys {PARAM_NAMES}, got {keys}")
        input_size, hidden_size, output_size = self.sizes
        expected = {"W1": (input_size, hidden_size), "b1": (hidden_size,),
                    "W2": (hidden_size, output_size), "b2": (output_size,)}
        values = {key: _param(params, key) for key in PARAM_NAMES}
        for key, shape in expected.items():
            if tuple(values[key].shape) != shape:
                raise ValueError(f"params['{key}'] has shape {tuple(values[key].shape)}, "
                                 f"this module needs {shape}")
        # nn.Linear keeps weight as (out, in): the book's W transposed
        with torch.no_grad():
            self.linear1.weight.copy_(values["W1"].T)
            self.linear1.bias.copy_(values["b1"])
            self.linear2.weight.copy_(values["W2"].T)
            self.linear2.bias.copy_(values["b2"])
        return self

    def to_params(self):
        """The parameters as the book's ``params`` dict: fresh tensors, ``W1`` is (in, hidden)."""
        def copy(tensor):
            return tensor.detach().clone(memory_format=torch.contiguous_format)
        return {"W1": copy(self.linear1.weight.T), "b1": copy(self.linear1.bias),
                "W2": copy(self.linear2.weight.T), "b2": copy(self.linear2.bias)}

    # Read from the weights, so they follow module.to(...)
    @property
    def dtype(self):
        return self.linear1.weight.dtype

    @property
    def device(self):
        return self.linear1.weight.device

    @property
    def sizes(self):
        return self.linear1.in_features, self.linear1.out_features, self.linear2.out_features

    def _check(self, x, t):
        input_size, _, output_size = self.sizes
        return check_batch(x, t, input_size, output_size, self.dtype, device=self.device)

    def forward(self, x):
        return self.linear2(torch.sigmoid(self.linear1(x)))

    # The unchecked forms below serve the training loop, which validates its
    # data once instead of once per iteration.
    def _loss(self, x, t):
        logits = self(x)
        if self.loss_name == "book":
            return _cross_entropy_error(F.softmax(logits, dim=-1), t)
        return F.cross_entropy(logits, _as_indices(t))

    @torch.no_grad()
    def _accuracy(self, x, t):
        y = torch.argmax(self(x), dim=1)  # softmax keeps the order: argmax of the logits
        return torch.sum(y == _as_indices(t)).item() / float(x.shape[0])

    def _gradient(self, x, t):
        weights = [self.linear1.weight, self.linear1.bias, self.linear2.weight, self.linear2.bias]
        with torch.enable_grad():
            loss = self._loss(x, t)
        gW1, gb1, gW2, gb2 = torch.autograd.grad(loss, weights)
        return {"W1": gW1.T.contiguous(), "b1": gb1, "W2": gW2.T.contiguous(), "b2": gb2}

    @torch.no_grad()
    def predict(self, x):
        """Softmax probabilities for a 2-D batch ``x``."""
        x = check_inputs(x, self.sizes[0], self.dtype, device=self.device)
        return F.softmax(self(x), dim=-1)

    def loss(self, x, t):
        """This module's loss (see the module docstring), differentiable."""
        return self._loss(*self._check(x, t))

    def accuracy(self, x, t):
        return self._accuracy(*self._check(x, t))

    def gradient(self, x, t):
        """``torch.autograd`` gradients of the loss, keyed and laid out like ``params``."""
        return self._gradient(*self._check(x, t))


def _param(params, key):
    if not isinstance(params, dict) or key not in params:
        raise ValueError(f"params must be a dict with keys {PARAM_NAMES}; '{key}' is missing")
    return as_float_tensor(params[key], f"params['{key}']")
