"""The book's ``RnnlmTrainer`` loop on ``numpy_lm.Rnnlm``, written out: a learner's copy.

Each window takes ``time_size`` steps of ``batch_size`` parallel streams (``get_batch``);
the model's ``TimeLSTM`` keeps its state from one window to the next (``stateful=True``),
and backpropagates through the window alone. The gradients of a weight listed twice (the
tied ``embed_W.T`` of ``BetterRnnlm``) are summed (``remove_duplicate``), clipped by their
global norm (``clip_grads``), and SGD updates. ``torch_trainer.py`` is its twin in torch,
line for line.

    python examples/rnn_lm/numpy_trainer.py --steps 20 --max-grad-norm 0.1
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import numpy_lm  # noqa: E402

CORPUS = Path(__file__).with_name("corpus.npz")


def get_batch(xs, ts, batch_size, time_size, time_idx):
    data_size = len(xs)
    jump = data_size // batch_size
    offsets = [i * jump for i in range(batch_size)]  # each stream's starting point
    batch_x = np.empty((batch_size, time_size), dtype="i")
    batch_t = np.empty((batch_size, time_size), dtype="i")
    for t in range(time_size):
        for i, offset in enumerate(offsets):
            batch_x[i, t] = xs[(offset + time_idx) % data_size]
            batch_t[i, t] = ts[(offset + time_idx) % data_size]
        time_idx += 1
    return batch_x, batch_t, time_idx


def remove_duplicate(params, grads):
    """The book's ``remove_duplicate``: a weight listed twice (or once transposed) kept
    once, its gradients summed."""
    params, grads = params[:], grads[:]
    while True:
        found = False
        for i in range(len(params) - 1):
            for j in range(i + 1, len(params)):
                if params[i] is params[j]:
                    grads[i] += grads[j]
                elif (params[i].ndim == 2 and params[j].ndim == 2 and params[i].T.shape == params[j].shape
                      and np.all(params[i].T == params[j])):
                    grads[i] += grads[j].T
                else:
                    continue
                found = True
                params.pop(j)
                grads.pop(j)
                break
            if found:
                break
        if not found:
            return params, grads


def clip_grads(grads, max_norm):
    total_norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for g in grads:
            g *= rate


def train(model, corpus, steps, batch_size=4, time_size=5, lr=0.5, max_grad_norm=None):
    """``steps`` windows; each window's loss."""
    xs, ts = corpus[:-1], corpus[1:]
    time_idx, losses = 0, []
    for _ in range(steps):
        batch_x, batch_t, time_idx = get_batch(xs, ts, batch_size, time_size, time_idx)
        loss = model.forward(batch_x, batch_t)
        model.backward()
        params, grads = remove_duplicate(model.params, model.grads)
        if max_grad_norm is not None:
            clip_grads(grads, max_grad_norm)
        for p, g in zip(params, grads):
            p -= lr * g
        losses.append(float(loss))
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--max-grad-norm", type=float, default=None)
    args = parser.parse_args(argv)
    losses = train(numpy_lm.Rnnlm(), np.load(CORPUS)["corpus"], args.steps,
                   max_grad_norm=args.max_grad_norm)
    for k, loss in enumerate(losses):
        print(f"window {k:2d}  loss {loss:.6f}")


if __name__ == "__main__":
    main()
