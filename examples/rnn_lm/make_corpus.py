"""A small corpus for training side by side: ``corpus``, a 1-D array of token ids.

The walk through ``make_data.NEXT`` (ten words, some order in them), long enough for 20
windows of 4 streams of 5 steps before the streams wrap around.

    python examples/rnn_lm/make_corpus.py             # writes examples/rnn_lm/corpus.npz
    python examples/rnn_lm/make_corpus.py out.npz --length 500 --seed 1
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from make_data import corpus  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(Path(__file__).with_name("corpus.npz")))
    parser.add_argument("--length", type=int, default=401)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ids = corpus(args.length, args.seed)
    np.savez(args.path, corpus=ids)
    print(f"wrote {args.path}: corpus, {len(ids)} token ids")


if __name__ == "__main__":
    main()
