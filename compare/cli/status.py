"""The exit status every command line of the project uses, and the error behind 2.

0: the command finished and parity holds (or the run finished); 1: parity
does not hold (or training diverged); 2: the command cannot run as asked (a
bad option, a device this machine lacks, missing data), said in one line on
stderr, before any work starts. Anything else that goes wrong is a bug and
keeps its traceback.
"""
import sys

OK, FAILED, CANNOT_RUN = 0, 1, 2


class CannotRun(Exception):
    """The command cannot run as asked; the message says why, naming the option."""


def one_line(exc):
    """An exception's message on one line (a loader's message may span several)."""
    return " ".join(str(exc).split())


def refuse(name, exc):
    """Say on stderr, in one line, why ``name`` cannot run; the exit status for it."""
    print(f"ERROR: {name} cannot run: {one_line(exc)}", file=sys.stderr)
    return CANNOT_RUN
