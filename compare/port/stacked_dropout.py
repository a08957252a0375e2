"""The dropout a stacked ``nn.LSTM``/``nn.GRU``/``nn.RNN`` draws between its layers,
answered with the NumPy draws.

``nn.LSTM(num_layers=2, dropout=p)`` drops the output of each layer but the last, inside
one op (``torch.lstm``), where no ``F.dropout`` is called for the tape to answer: its mask
comes from torch's own stream, and a right port of the book's stacked ``TimeLSTM``s with a
``TimeDropout`` between them would compare two random streams. So the op, in training
with ``dropout > 0``, is run as torch runs it, one layer at a time (the same op with
``num_layers=1``, ``dropout=0`` on that layer's weights and initial state), each output but
the last dropped by ``dropout(x, p)``: the replay's own answer, the next NumPy keep mask
(or a fresh draw counted as missed). A form this does not split (bidirectional, a
projection, a packed sequence) runs as it is and its draw is counted as missed.
"""

OPS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def stacked_ops(torch):
    return {getattr(torch, name) for name in OPS}


def draws(args, kwargs):
    """The op draws a dropout mask: training, ``dropout > 0``, more than one layer (the
    input form's arguments, or the packed form's, one later)."""
    if kwargs or len(args) != 9:
        return False
    at = 4 if isinstance(args[2], (list, tuple)) else 5  # the packed form: batch_sizes second
    try:
        layers, p, train = int(args[at]), float(args[at + 1]), bool(args[at + 2])
    except (TypeError, ValueError):
        return False
    return train and p > 0 and layers > 1


def split(func, args, dropout):
    """``func(*args)`` one layer at a time with ``dropout(output, p)`` between the layers;
    ``None`` where the call is not of the form this splits."""
    import torch
    if len(args) != 9 or not isinstance(args[2], (list, tuple)):
        return None
    x, hx, weights, has_biases, layers, p, train, bidirectional, batch_first = args
    layers = int(layers)
    per, rest = divmod(len(weights), layers)
    if bidirectional or rest or per != (4 if has_biases else 2):
        return None
    lstm = isinstance(hx, (list, tuple))
    out, finals = x, []
    for layer in range(layers):
        state = [h[layer:layer + 1] for h in hx] if lstm else hx[layer:layer + 1]
        result = func(out, state, weights[layer * per:(layer + 1) * per], has_biases, 1, 0.0,
                      train, False, batch_first)
        out = result[0]
        finals.append(result[1:])
        if layer < layers - 1:
            out = dropout(out, p)
    return (out, *(torch.cat([f[k] for f in finals], 0) for k in range(len(finals[0]))))
