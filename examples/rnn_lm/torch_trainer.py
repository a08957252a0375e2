"""The torch twin of ``numpy_trainer.py``: the same windows, the state carried and
detached, ``clip_grad_norm_``, ``torch.optim.SGD``; a learner's copy.

The port (``torch_train.TrainedLstmPort``) starts from the NumPy model's own values, loaded
as ``compare port`` pairs them: each weight transposed, the book's gate blocks f, g, i, o
put in torch's order i, f, g, o, the book's ``b`` in ``bias_ih`` with ``bias_hh`` frozen
at 0. Its losses are the NumPy loop's to float32's round-off.

    python examples/rnn_lm/torch_trainer.py --steps 20 --max-grad-norm 0.1
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import numpy_lm  # noqa: E402
import torch_train  # noqa: E402
from numpy_trainer import CORPUS, get_batch  # noqa: E402


def fgio_to_ifgo(a):
    """The book's gate blocks (columns) f, g, i, o in torch's order i, f, g, o."""
    f, g, i, o = np.split(a, 4, axis=-1)
    return np.concatenate([i, f, g, o], axis=-1)


def load_numpy_params(port, model):
    embed_W, Wx, Wh, b, W, bias = model.params
    with torch.no_grad():
        port.embed.weight.copy_(torch.from_numpy(embed_W))
        # the book keeps Wx as (in, 4H); nn.LSTM's weight_ih is (4H, in)
        port.lstm.weight_ih_l0.copy_(torch.from_numpy(fgio_to_ifgo(Wx).T.copy()))
        port.lstm.weight_hh_l0.copy_(torch.from_numpy(fgio_to_ifgo(Wh).T.copy()))
        port.lstm.bias_ih_l0.copy_(torch.from_numpy(fgio_to_ifgo(b)))
        port.lstm.bias_hh_l0.zero_()  # frozen by the port: bias_ih alone is the book's b
        port.fc.weight.copy_(torch.from_numpy(W.T.copy()))
        port.fc.bias.copy_(torch.from_numpy(bias))


def train(port, corpus, steps, batch_size=4, time_size=5, lr=0.5, max_grad_norm=None):
    """``steps`` windows; each window's loss."""
    xs, ts = corpus[:-1], corpus[1:]
    trained = [p for p in port.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trained, lr=lr)
    time_idx, losses = 0, []
    for _ in range(steps):
        batch_x, batch_t, time_idx = get_batch(xs, ts, batch_size, time_size, time_idx)
        scores = port(torch.from_numpy(batch_x).long())  # the state goes on from the last window
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]),
                               torch.from_numpy(batch_t).long().reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(trained, max_grad_norm)
        optimizer.step()
        losses.append(loss.item())
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--max-grad-norm", type=float, default=None)
    args = parser.parse_args(argv)
    port = torch_train.make_lstm()
    load_numpy_params(port, numpy_lm.Rnnlm())
    losses = train(port, np.load(CORPUS)["corpus"], args.steps, max_grad_norm=args.max_grad_norm)
    for k, loss in enumerate(losses):
        print(f"window {k:2d}  loss {loss:.6f}")


if __name__ == "__main__":
    main()
