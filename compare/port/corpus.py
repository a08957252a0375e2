"""A corpus of token ids cut into windows as the book's ``RnnlmTrainer.get_batch`` cuts it.

``xs = corpus[:-1]``, ``ts = corpus[1:]``; ``batch_size`` streams start ``jump =
len(xs) // batch_size`` words apart, and each window takes the next ``time_size`` words of
every stream, ``time_idx`` going on from window to window (the book's trainer resets it
only when ``fit`` begins) and wrapping around the corpus as the book's ``% data_size`` does.
A corpus shorter than one window of every stream (``len(xs) < batch_size * time_size``:
the book's ``max_iters`` is then 0 and it trains nothing) is refused.
"""
import os

import numpy as np

from .targets import PortSetupError


def read_corpus(path):
    """The 1-D integer array ``corpus`` of a ``.npz`` file, or ``None`` where it holds none."""
    if path is None or not str(path).endswith(".npz") or not os.path.isfile(path):
        return None  # the batches' loader says what is wrong with it
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "corpus" not in npz.files:
                return None
            corpus = npz["corpus"]
    except (OSError, ValueError) as exc:
        raise PortSetupError(f"--data {path} is not a readable .npz file "
                             f"({type(exc).__name__}: {exc})") from exc
    return checked_corpus(corpus, f"--data {path}: corpus")


def checked_corpus(corpus, what="corpus"):
    corpus = np.asarray(corpus)
    if corpus.ndim != 1 or not np.issubdtype(corpus.dtype, np.integer):
        raise PortSetupError(f"{what} must be a 1-D array of integer token ids, got "
                             f"{corpus.dtype} of shape {corpus.shape}")
    if corpus.size and corpus.min() < 0:
        raise PortSetupError(f"{what} holds negative token ids ({int(corpus.min())})")
    return corpus


def windows(corpus, batch_size, time_size, count):
    """The first ``count`` windows ``(x, t)``, each ``(batch_size, time_size)`` of int32
    (the book's ``dtype='i'``)."""
    corpus = checked_corpus(corpus)
    for name, value in (("batch size", batch_size), ("time size", time_size), ("windows", count)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise PortSetupError(f"{name} must be a positive integer, got {value!r}")
    xs, ts = corpus[:-1], corpus[1:]
    size = len(xs)
    if size < batch_size * time_size:
        raise PortSetupError(f"the corpus has {len(corpus)} token ids: {batch_size} streams of "
                             f"{time_size} steps need at least {batch_size * time_size + 1}")
    jump = size // batch_size
    offsets = np.arange(batch_size)[:, None] * jump
    out = []
    for k in range(count):
        at = (offsets + k * time_size + np.arange(time_size)[None, :]) % size
        out.append((xs[at].astype(np.int32), ts[at].astype(np.int32)))
    return out
