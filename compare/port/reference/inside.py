"""The NumPy forward pass seen from inside, without changing the user's code.

Most NumPy models have no ``layers``: a ``_forward`` keeps its intermediate
arrays in locals (``z1 = x @ W1 + b1``), in a dict (``cache["h"]``), in a list
(``acts[2]``) or on ``self`` (``self.z2``). A line tracer (``sys.settrace``)
follows the frames of the user's own code (not NumPy's, torch's, the standard
library's or this package's), and after each line notes every float array that
appeared among its locals since the line before: where it is held (the
expression a reader would write: ``h``, ``c["h"]``, ``acts[2]``, ``self.z2``),
the line that made it, and a copy of its values. An array changed in place
(``out[out < 0] *= 0.1``) is noted again with the line that changed it; an array
a user function returns without naming it (``return np.maximum(0, z)``) is noted
at the return and named where the caller binds it.

Arrays that existed before the pass (the parameters, the batch) are not noted:
they are inputs, not what the pass computes. Each record is a ``LayerRecord``
without an input (the NumPy side's input to an expression is not known; the
torch record it pairs with has one), and the check pairs them with the port's
layers by value, in order (``check/inside_rows.py``).
"""
import linecache
import os
import sys
import sysconfig
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..capture import Capture, LayerRecord

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # compare/port
_ROOTS = tuple(sorted({os.path.abspath(p) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")
                       if (p := sysconfig.get_paths().get(key))} | {
    os.path.dirname(os.path.abspath(np.__file__)) + os.sep, _PACKAGE + os.sep}))
# a pass that makes more arrays, copies more bytes or runs more lines (a loop over samples
# or pixels) is not followed further: the rows stop there, the check goes on
MAX_ARRAYS = 2000
MAX_BYTES = 256 * 2 ** 20
MAX_LINES = 50_000


@dataclass
class InsideRecord(LayerRecord):
    """An array the NumPy pass made: where it is held and the line that made it."""
    held: str = ""  # h, c["h"], acts[2], self.z2
    file: str = ""
    line: int = 0
    function: str = ""

    @property
    def made(self):
        """``numpy_net.py:42 (in _forward): h = np.where(z > 0, z, 0.1 * z)``"""
        source = linecache.getline(self.file, self.line).strip()
        place = f"{os.path.basename(self.file)}:{self.line}"
        return f"{place} (in {self.function})" + (f": {source}" if source else "")


def _user_code(filename):
    if not filename or filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    return not path.startswith(_ROOTS)


def _floats(value):
    return isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim >= 1


def _held(name, value, depth=0):
    """``[(expression, array)]``: the float arrays a local holds, one level into dicts,
    lists, tuples and ``self``."""
    if _floats(value):
        return [(name, value)]
    out = []
    if isinstance(value, dict):
        for k, v in list(value.items())[:64]:
            if not isinstance(k, (str, int)):
                continue
            inner = f"{name}[{k!r}]".replace("'", '"')
            if _floats(v):
                out.append((inner, v))
            elif isinstance(v, (dict, list, tuple)) and depth < 2:
                out += _held(inner, v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for k, v in enumerate(value[:64]):
            if _floats(v):
                out.append((f"{name}[{k}]", v))
            elif isinstance(v, (dict, list, tuple)) and depth < 2:  # caches[1]["z"]
                out += _held(f"{name}[{k}]", v, depth + 1)
    elif name == "self" and hasattr(value, "__dict__"):
        for attr, v in list(vars(value).items())[:64]:
            if attr != "params":
                out += _held(f"self.{attr}", v, depth + 1)
    return out


class _Follower:
    """The tracer: one per pass."""

    def __init__(self, known):
        self.known = {id(a) for a in known}
        self.keep = list(known)  # held, so that no id is reused while the pass runs
        self.records = []
        self.snap = {}  # id -> (record, array): arrays whose later in-place change is noted
        self.returned = {}  # id -> record of an array a user function returned unnamed
        self.full = False
        self.lines = self.bytes = 0

    def note(self, held, value, frame, line):
        if len(self.records) >= MAX_ARRAYS or self.bytes + value.nbytes > MAX_BYTES:
            self.full = True
            return
        self.bytes += value.nbytes
        record = InsideRecord(held, "", None, np.array(value, copy=True), held=held,
                              file=frame.f_code.co_filename, line=line,
                              function=frame.f_code.co_name)
        self.records.append(record)
        self.snap[id(value)] = (record, value)
        return record

    def scan(self, frame, line, first=False):
        try:
            local = frame.f_locals
        except Exception:  # a frame whose locals cannot be read tells nothing
            return
        code = frame.f_code
        arguments = set(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
        for name, value in list(local.items()):
            for held, array in _held(name, value):
                key = id(array)
                if key in self.returned:
                    record, caller = self.returned[key]
                    if frame is caller:  # named where its caller binds it, made where returned
                        del self.returned[key]
                        record.key = record.held = held
                    continue
                if key not in self.known:
                    self.known.add(key)
                    self.keep.append(array)
                    caller = frame.f_back
                    if first and name in arguments and caller is not None and _user_code(
                            caller.f_code.co_filename):
                        # made by the caller's expression (f(x @ W + b)): its line, and the
                        # name the function gives it
                        self.note(f"{held} (argument of {code.co_name})", array, caller,
                                  caller.f_lineno)
                    else:
                        self.note(held, array, frame, line)
                elif key in self.snap:
                    record, _ = self.snap[key]
                    if (record.output.shape == array.shape and record.function == frame.f_code.co_name
                            and not np.array_equal(record.output, array, equal_nan=True)):
                        self.note(held, array, frame, line)  # changed in place by this line

    def tracer(self, frame, event, arg):
        if event != "call" or self.full or not _user_code(frame.f_code.co_filename):
            return None
        state = {"line": frame.f_lineno, "first": True}

        def local(frame, event, arg):
            self.lines += 1
            if self.full or self.lines > MAX_LINES:
                self.full = True
                return None  # this frame is no longer followed
            if event in ("line", "return"):
                self.scan(frame, state["line"], first=state["first"])
                state["first"] = False
            if event == "line":
                state["line"] = frame.f_lineno
            elif event == "return" and _floats(arg) and id(arg) not in self.known:
                self.known.add(id(arg))
                self.keep.append(arg)
                record = self.note(f"{frame.f_code.co_name}()", arg, frame, state["line"])
                if record is not None:
                    self.returned[id(arg)] = (record, frame.f_back)
            elif event == "return" and id(arg) in self.returned and self.returned[id(arg)][1] is frame:
                # handed on unnamed (return act(z)): named where the next caller binds it
                self.returned[id(arg)] = (self.returned[id(arg)][0], frame.f_back)
            return local
        return local


@contextmanager
def inside_capture(known):
    """Follow the user's frames for one pass; yields the ``Capture`` its records go to.
    ``known``: the arrays that exist before the pass (the parameters, the batch)."""
    follower = _Follower(known)
    capture = Capture()
    previous = sys.gettrace()
    sys.settrace(follower.tracer)
    try:
        yield capture
    finally:
        sys.settrace(previous)
        capture.records = unique_keys(follower.records)
        capture.inside = True
        capture.truncated = follower.full


def unique_keys(records):
    """A key per record that a report can show: the expression, with its line where the
    expression holds several arrays (``h (line 42)``), and a count where a line made
    several (a loop: ``a (line 17, 2nd)``)."""
    by_name = {}
    for r in records:
        by_name.setdefault(r.held, []).append(r)
    for name, group in by_name.items():
        if len(group) == 1:
            continue
        by_line = {}
        for r in group:
            by_line.setdefault(r.line, []).append(r)
        for line, same in by_line.items():
            for k, r in enumerate(same):
                r.key = f"{name} (line {line})" if len(same) == 1 else f"{name} (line {line}, #{k + 1})"
    return records


def existing_arrays(*roots, depth=3):
    """The float arrays reachable from ``roots`` (the model, the batch) before the pass:
    its parameters, its data, a cache an earlier pass left."""
    found, seen = [], set()

    def walk(value, level):
        if id(value) in seen or level > depth:
            return
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            found.append(value)
        elif isinstance(value, dict):
            for v in list(value.values())[:256]:
                walk(v, level + 1)
        elif isinstance(value, (list, tuple)):
            for v in value[:256]:
                walk(v, level + 1)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            for v in list(vars(value).values())[:256]:
                walk(v, level + 1)
    for root in roots:
        walk(root, 0)
    return found
