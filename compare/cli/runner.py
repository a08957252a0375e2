"""The ``benchmarks/*.py`` runners under the project's exit status (``status.py``).

A runner's options, its output folder and MNIST are checked as ``python -m
compare bench`` checks them, before any timing: a request no run can serve (a
value no run can use, a device this machine lacks, missing or broken data) is
one line on stderr and exit status 2, and so is an option argparse cannot
parse. The runners time and report; they judge no parity (``python -m
compare`` does), so a run that finished exits 0.
"""
import argparse
from pathlib import Path

from numpy_impl.validation import check_positive_int, check_seed

from . import ch4
from .status import OK, CannotRun, refuse


class ArgumentParser(argparse.ArgumentParser):
    """argparse's, but an option it cannot parse is one line on stderr (no usage), exit 2."""

    def error(self, message):
        raise SystemExit(refuse(self.prog, message))


def parser(name, doc, device=True):
    """A runner's parser with the options every runner has: ``--out`` (and ``--device``)."""
    p = ArgumentParser(prog=name, description=doc)
    if device:
        p.add_argument("--device", default=None, help="also time this torch device, e.g. cuda")
    p.add_argument("--out", type=Path, default=Path("out/bench"), help="folder for the JSON result")
    return p


def check(args, counts=(), seeds=()):
    """``counts``: options that must be positive integers; ``seeds``: seeds; then the
    device (when given) and the output folder. Raises ``CannotRun``."""
    try:
        for option in counts:
            check_positive_int(getattr(args, option), f"--{option.replace('_', '-')}")
        for option in seeds:
            check_seed(getattr(args, option), f"--{option}")
        if getattr(args, "device", None) is not None:
            from torch_impl.validation import check_device
            check_device(args.device, "--device")
        ch4._check_out(args.out)
    except (ValueError, TypeError) as exc:
        raise CannotRun(exc) from exc


def run(name, args, work, counts=(), seeds=()):
    """The exit status of runner ``name``: ``work(data)`` with the benchmarks' MNIST
    (index labels) once the options (see ``check``) and the data are found usable."""
    try:
        check(args, counts, seeds)
        try:  # the loader's message says which folder and what to do
            data = ch4.load_index_data()
        except (FileNotFoundError, ValueError) as exc:
            raise CannotRun(exc) from exc
    except CannotRun as exc:
        return refuse(name, exc)
    work(data)
    return OK
