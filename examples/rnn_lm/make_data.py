"""One batch of token ids for ``compare port --data``: ``x`` and ``t``, integers ``(N, T)``.

A small corpus over ten words is cut into ``N`` rows of ``T`` steps as the book's
``RnnlmTrainer`` cuts its corpus: row ``i`` starts ``i * (len(corpus) // N)`` words in,
``x`` the words and ``t`` the word after each.

    python examples/rnn_lm/make_data.py                 # writes examples/rnn_lm/tokens.npz
    python examples/rnn_lm/make_data.py out.npz --batch 8 --time-size 7
"""
import argparse
from pathlib import Path

import numpy as np

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "and", "."]

# each word's likely successors: a corpus with some order in it, so that the targets are
# not uniform noise (a language model's loss then has something to learn)
NEXT = {"the": ["cat", "dog", "mat"], "a": ["cat", "dog", "mat"], "cat": ["sat", "ran"],
        "dog": ["sat", "ran"], "sat": ["on"], "ran": ["on", "and"], "on": ["the", "a"],
        "mat": [".", "and"], "and": ["the", "a"], ".": ["the", "a"]}


def corpus(length=200, seed=0):
    """Word ids of a walk through ``NEXT``, ``length`` words long."""
    rng = np.random.RandomState(seed)
    word, ids = "the", []
    for _ in range(length):
        ids.append(WORDS.index(word))
        word = NEXT[word][rng.randint(len(NEXT[word]))]
    return np.array(ids, dtype=np.int64)


def batch(ids, batch_size=4, time_size=5):
    """``(x, t)``: ``batch_size`` rows of ``time_size`` steps, each row from its own offset."""
    xs, ts = ids[:-1], ids[1:]
    jump = len(xs) // batch_size
    rows = np.arange(batch_size)[:, None] * jump + np.arange(time_size)[None, :]
    return xs[rows % len(xs)], ts[rows % len(xs)]


def write_tokens(path, batch_size=4, time_size=5, seed=0):
    x, t = batch(corpus(seed=seed), batch_size, time_size)
    np.savez(path, x=x, t=t)
    return x, t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(Path(__file__).with_name("tokens.npz")))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--time-size", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    x, _ = write_tokens(args.path, args.batch, args.time_size, args.seed)
    print(f"wrote {args.path}: x and t, {x.shape[0]} rows of {x.shape[1]} token ids")


if __name__ == "__main__":
    main()
