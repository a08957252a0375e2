"""Find what the user names on the command line: ``file.py:name``, ``package.module:name``,
or a plain module (``file.py`` / ``package.module``) for twins by name.

Every way this can go wrong is a ``PortSetupError`` that says which side,
what was given and what was expected: the command turns it into exit status 2
and one line, never a traceback from inside the user's file.
"""
import importlib
import importlib.util
import inspect
import os
import site
import sys
import sysconfig
from pathlib import Path


class PortSetupError(ValueError):
    """The check cannot run: a target, a model, a batch or an option is not usable."""


def split_spec(spec):
    """``(module_part, name or None)`` for ``file.py:name``, ``pkg.mod:name`` or a module alone."""
    if not isinstance(spec, str) or not spec.strip():
        raise PortSetupError(f"a target must be 'path/to/file.py:name' or 'package.module:name', "
                             f"got {spec!r}")
    module_part, sep, name = spec.rpartition(":")
    # "C:\\x.py" and "file.py" have no ":name"; a name is an identifier
    if not sep or not name.isidentifier() or not module_part:
        return spec, None
    return module_part, name


def load_module(module_part, side):
    """Import a ``.py`` file by path, or a module by dotted name."""
    looks_like_file = module_part.endswith(".py") or "/" in module_part or "\\" in module_part
    if looks_like_file:
        path = Path(module_part).expanduser()
        if not path.is_file():
            raise PortSetupError(f"{side}: no such file {module_part!r}")
        # a file imports its neighbours as a script would
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        mod_name = f"_port_target_{side}_{path.stem}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module  # dataclasses and pickling look a module up by name
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(mod_name, None)
            raise PortSetupError(f"{side}: importing {module_part} {raised(exc)}") from exc
        return module
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as exc:
        raise PortSetupError(f"{side}: cannot import {module_part!r} ({exc}); give a "
                             f"'path/to/file.py:name' or an importable 'package.module:name'") from exc
    except Exception as exc:
        raise PortSetupError(f"{side}: importing {module_part} {raised(exc)}") from exc


def load_attribute(spec, side, what="model"):
    """The object a ``:name`` target names, as it is."""
    module_part, name = split_spec(spec)
    if name is None:
        raise PortSetupError(f"{side}: {spec!r} names no {what}; write {spec}:NAME")
    module = load_module(module_part, side)
    if not hasattr(module, name):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise PortSetupError(f"{side}: {module_part} has no {name!r} (it has: "
                             f"{', '.join(public[:12]) or 'nothing public'})")
    return getattr(module, name)


def load_target(spec, side):
    """The model a ``:name`` target names: a class is instantiated, a function called,
    both without arguments; any other object is taken as the model itself."""
    module_part, name = split_spec(spec)
    if name is None:
        raise PortSetupError(f"{side}: {spec!r} names no model; write {spec}:NAME, NAME being a "
                             f"class or a zero-argument function that returns the model")
    factory = load_attribute(spec, side)
    if not callable(factory) or _is_model(factory):
        return factory
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise PortSetupError(f"{side}: {spec} needs arguments {inspect.signature(factory)}; "
                             f"give a zero-argument function that builds the model") from None
    except ValueError:
        pass  # builtins without a signature: just try
    try:
        return factory()
    except Exception as exc:
        raise PortSetupError(f"{side}: {spec}() {raised(exc)}") from exc


def _is_model(obj):
    """An instance that is already a model (an nn.Module or something with ``params``)."""
    return not inspect.isclass(obj) and not inspect.isfunction(obj) and (
        hasattr(obj, "params") or hasattr(obj, "parameters"))


MODE_KEYWORDS = ("train_flg", "training", "train")


def mode_keyword(fn):
    """The keyword by which a model's ``fn`` takes its mode (the book's ``train_flg``), or None."""
    try:
        accepted = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    return next((k for k in MODE_KEYWORDS if k in accepted), None)


def _library_folders():
    """Folders whose code is no user's: this package, the standard library, installed
    packages. A user's error is located at its innermost frame outside them."""
    paths = sysconfig.get_paths()
    folders = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    try:
        folders.update(site.getsitepackages())
        folders.add(site.getusersitepackages())
    except AttributeError:  # a virtualenv's old site module
        pass
    folders.add(str(Path(__file__).resolve().parents[1]))  # compare/
    return tuple(os.path.join(os.path.realpath(f), "") for f in folders if f)


def raised_at(exc):
    """``file:line`` of the innermost frame of ``exc``'s traceback in the user's own code
    (where their model raised, not where torch or NumPy reported it); None if there is none.
    A ``SyntaxError`` is located at the line it names."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{_shown(exc.filename)}:{exc.lineno}"
    library = _library_folders()
    found, tb = None, exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not name.startswith("<") and not os.path.realpath(name).startswith(library):
            found = f"{_shown(name)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _shown(path):
    """A path as the user would type it: relative to the working folder when under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith(os.pardir) else relative


def raised(exc):
    """``"raised KeyError at model.py:12: 'W3'"``: what a user's code raised, and where."""
    at = raised_at(exc)
    return f"raised {type(exc).__name__}" + (f" at {at}" if at else "") + f": {exc}"


def call_side(side, what, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; any exception a user's model raises becomes a
    ``PortSetupError`` naming the side, the call, the shapes it was given and the line of
    the user's code that raised (their bug, said in one line, not a traceback)."""
    try:
        return fn(*args, **kwargs)
    except PortSetupError:
        raise
    except Exception as exc:
        shapes = ", ".join(type(a).__name__ + (str(tuple(a.shape)) if hasattr(a, "shape") else "")
                           for a in args)
        raise PortSetupError(f"{side}: {what}({shapes}) {raised(exc)}") from exc
