"""``python -m compare``: the chapter-4 harness and the port checker, on the command line.

    python -m compare gradcheck                 # every gradient path, every pair, a table
    python -m compare train --side both         # the book's training on both sides
    python -m compare curves --iters 10000      # the two loss curves, step by step
    python -m compare figures                   # the book's figures and the parity figures
    python -m compare report                    # all of it on one Markdown page
    python -m compare bench numerical-gradient  # timings against the book's own code
    python -m compare port NUMPY TORCH          # your own port against its NumPy original
    python -m compare write-port NUMPY          # the port written for you, then checked

Results go to ``--out`` (default ``./out``) as JSON and PNG. The last line
printed is a one-line verdict. Exit status: 0 when the command finished and
parity holds, 1 when parity does not hold (or training diverged), 2 when the
command cannot run (a bad argument, no CUDA, no data), with one line on
stderr and no traceback.
"""
import argparse
import sys
import time

from . import ch4, port, write_port
from .status import FAILED, OK, CannotRun, refuse


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m compare", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ch4.add_parsers(sub)
    port.add_parsers(sub)
    write_port.add_parsers(sub)
    return parser


COMMANDS = {**ch4.COMMANDS, **port.COMMANDS, **write_port.COMMANDS}
PREPARE = {**ch4.PREPARE, **port.PREPARE, **write_port.PREPARE}  # checks every option and loads the data, before any work


def main(argv=None):
    args = build_parser().parse_args(argv)  # argparse's own usage errors exit 2 too
    start = time.perf_counter()
    try:
        PREPARE[args.command](args)
        # From here on an exception is a bug, not a request to refuse: it keeps its
        # traceback. A port check also refuses, as it goes, a model that cannot be
        # checked (a target that raises, NaN in an output): CannotRun too.
        ok, verdict = COMMANDS[args.command](args)
    except CannotRun as exc:
        return refuse(args.command, exc)
    print(f"{verdict} [{time.perf_counter() - start:.1f} s]")
    return OK if ok else FAILED


def port_main(argv=None):
    """``check-torch-port NUMPY TORCH [options]``: the installed command named for the port
    check, the same as ``python -m compare port NUMPY TORCH [options]``."""
    return main(["port", *(sys.argv[1:] if argv is None else argv)])
