"""Checkpoints of a training run, and a run that survives Ctrl-C, in PyTorch.

The file is the NumPy side's (``numpy_impl.checkpoint`` describes it), and so
are writing it atomically, reading it back, checking it and the resumable
run: this module only converts at the edges, ``tensor.cpu().numpy()`` on the
way out and ``torch.from_numpy(...).to(device)`` on the way in, bit for bit,
and knows what is torch's own: tensors, devices and ``TwoLayerNetModule``.
"""
import torch

from numpy_impl import checkpoint as _numpy_checkpoint

from .module import TwoLayerNetModule
from .train import _params, train
from .two_layer_net import PARAM_NAMES
from .validation import _dtype_name

FORMAT = _numpy_checkpoint.FORMAT
RUN_SETTINGS = _numpy_checkpoint.RUN_SETTINGS


class Nets(_numpy_checkpoint.Nets):
    """Torch networks, ``TwoLayerNet`` or ``TwoLayerNetModule``, on any device."""

    train = staticmethod(train)

    @staticmethod
    def dtype_name(dtype):
        return _dtype_name(dtype)

    @staticmethod
    def numpy_params(net):
        params = {}
        for key, value in _params(net).items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"net.params[{key!r}] is a {type(value).__name__}; torch_impl "
                                f"saves torch networks (use numpy_impl.checkpoint for NumPy ones)")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"net.params[{key!r}] contains NaN or infinity; a diverged run "
                                 f"cannot be checkpointed for resuming")
            params[key] = value.detach().cpu().numpy()
        return params

    @staticmethod
    def snapshot(net):
        # a module's to_params() is already a copy
        return (net.to_params() if isinstance(net, TwoLayerNetModule)
                else {key: value.detach().clone() for key, value in net.params.items()})

    @staticmethod
    def snapshot_to_numpy(params):
        return {key: value.cpu().numpy() for key, value in params.items()}

    @staticmethod
    def shapes(net):
        return {key: tuple(value.shape) for key, value in _params(net).items()}

    @staticmethod
    def load(net, params):
        tensors = {key: torch.from_numpy(params[key]).to(net.device) for key in PARAM_NAMES}
        if isinstance(net, TwoLayerNetModule):
            net.load_params(tensors)
        else:
            net.params.update(tensors)


save_checkpoint = Nets.save_checkpoint
train_resumable = Nets.train_resumable


def load_checkpoint(path, device=None):
    """Read a checkpoint written by either side.

    Returns a dict: ``params`` (tensors, on ``device``), ``history``,
    ``stream_state`` (for ``BookRandomStream.set_state``), ``iteration`` (the
    next one to run), ``dtype`` (a name, ``"float64"``) and ``meta``.
    """
    checkpoint = _numpy_checkpoint.load_checkpoint(path)
    checkpoint["params"] = {key: torch.from_numpy(value).to(device)
                            for key, value in checkpoint["params"].items()}
    return checkpoint
