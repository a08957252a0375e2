"""Layer kinds, one file each: all that is known of one kind of layer in one place.

=================  ===========================================================
file               kind
=================  ===========================================================
``affine.py``      the book's ``Affine`` / ``nn.Linear``, ``F.linear``, ``x @ W + b``;
                   the flatten before it (``flatten_order``); a square weight
                   used in the other layout (``transpose``)
``convolution.py`` im2col ``Convolution`` / ``nn.Conv2d``, ``F.conv2d``
``pooling.py``     ``Pooling`` / ``nn.MaxPool2d``, ``nn.AvgPool2d``
``batch_norm.py``  ``BatchNormalization`` / ``nn.BatchNorm1d``, ``nn.BatchNorm2d``
                   (``bn_eps``, ``bn_momentum``, ``bn_per_channel``, ``bn_unbiased_var``)
``dropout.py``     ``Dropout`` / ``nn.Dropout``, ``F.dropout`` (``inverted_dropout``)
``activations.py`` ``Relu``, ``LeakyRelu``, ``Elu``, ``Selu``, ``Gelu``, ``Softplus``,
                   ``Silu``, ``Sigmoid``, ``Tanh`` / their ``nn`` modules and ``F``
                   calls (``activation``: the function or its setting differs)
``layer_norm.py``  ``LayerNorm`` / ``nn.LayerNorm``, ``F.layer_norm`` (``ln_eps``:
                   the eps, the axes, or where the eps is added differ)
``softmax_loss.py`` ``SoftmaxWithLoss`` / ``F.cross_entropy``
``binary_loss.py`` a sigmoid's binary cross-entropy, known by its values only
                   (``F.binary_cross_entropy_with_logits``)
``recurrent.py``   ``TimeRNN``, ``TimeLSTM``, ``TimeGRU`` / ``nn.RNN``, ``nn.LSTM``, ``nn.GRU``
                   (paired and diagnosed by the pass: ``pairing.py``, ``check/gates.py``)
``embedding.py``   ``TimeEmbedding`` / ``nn.Embedding`` (paired by its use, a lookup)
=================  ===========================================================

``by_value.py`` knows a layer by what it computes, for the writer (a layer of a class no
kind claims, an array of a forward written inline), by asking each kind's ``computes``.
``base.py`` says what a kind holds, ``written.py`` what its writer (``write``, for
``compare write-port``) is handed and hands back. Adding a kind is adding a file
here, its ``KIND`` to ``KINDS`` below, and its tests.
"""
from . import (activations, affine, batch_norm, binary_loss, convolution, dropout, embedding,
               layer_norm, pooling, recurrent, softmax_loss)
from .base import LayerKind, Site, norm_name

KINDS = (affine.KIND, convolution.KIND, pooling.KIND, batch_norm.KIND, layer_norm.KIND,
         dropout.KIND, *activations.KINDS, softmax_loss.KIND, binary_loss.KIND)

# kinds the writer knows beyond those: the book's second volume's time layers, whose records
# the check pairs and diagnoses over the whole pass (recurrent.py's gate order and traps, a
# lookup paired by its use) rather than record by record, so the phases' registry leaves them out
SEQUENCE_KINDS = (embedding.KIND, affine.TIME_KIND, dropout.TIME_KIND, softmax_loss.TIME_KIND,
                  *recurrent.KINDS)


def numpy_kind(class_name):
    """The kind of a NumPy layer, by its class name (``None`` when none fits)."""
    return next((k for k in KINDS if k.is_numpy(class_name)), None)


def written_kind(class_name):
    """The kind whose writer writes a NumPy layer of this class (``None`` when none fits)."""
    return next((k for k in (*KINDS, *SEQUENCE_KINDS) if k.is_numpy(class_name)), None)


def torch_kind(class_name):
    return next((k for k in KINDS if k.is_torch(class_name)), None)


def kinds_are_twins(numpy_class, torch_class):
    a = numpy_kind(numpy_class)
    return a is not None and a is torch_kind(torch_class)


def kind_of_record(record, side):
    return numpy_kind(record.kind) if side == "numpy" else torch_kind(record.kind)


__all__ = ["KINDS", "SEQUENCE_KINDS", "LayerKind", "Site", "numpy_kind", "written_kind", "torch_kind",
           "kinds_are_twins",
           "kind_of_record", "norm_name"]
