"""``python -m compare write-port NUMPY``: write the torch port of a NumPy model, then check it.

    python -m compare write-port examples/ch6_extend/numpy_net.py:make_full_net --out port.py
    python -m compare write-port examples/rnn_lm/numpy_lm.py:make_rnnlm --data examples/rnn_lm/tokens.npz
    python -m compare write-port examples/ch7_conv/numpy_net.py:make_net --style functional

The port is written from the NumPy model's layers, each by its kind's writer
(``compare.port.writing``), then checked exactly as
``python -m compare port NUMPY FILE.py:make_port`` checks it (with
``--torch-optimizer FILE.py:make_optimizer`` where the NumPy loss holds weight
decay), and that verdict is printed last. Exit status: 0 written and passing,
1 written and not passing, 2 cannot write (the layer whose kind has no writer,
and its place, named in one line).
"""
import argparse
from pathlib import Path

from ..port.targets import split_spec
from . import port
from .status import CannotRun


def add_parsers(sub):
    p = sub.add_parser("write-port", help="write the torch port of a NumPy model, then check it",
                       description=__doc__.split("\n")[0])
    p.add_argument("numpy", metavar="NUMPY",
                   help="the NumPy model: path/to/file.py:name or package.module:name (a class or "
                        "a zero-argument function returning the model)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE.py",
                   help="where the port is written (default out/NAME_port.py)")
    p.add_argument("--data", default=None, metavar="mnist|random|FILE.npz",
                   help="the batch the port is written from and checked on, as compare port "
                        "--data takes it (token ids x and t for a language model; default mnist)")
    p.add_argument("--input-shape", default=None, metavar="784 | 1,28,28",
                   help="the shape of one sample, as compare port --input-shape takes it")
    p.add_argument("--style", choices=("modules", "functional"), default="modules",
                   help="modules: nn.Linear, nn.Conv2d, ... (default); functional: F.linear, "
                        "F.conv2d, ... on nn.Parameter attributes")
    p.add_argument("--numpy-kwargs", default=None, metavar="KEY=VALUE,...",
                   help="keywords for every call of the NumPy loss, as compare port takes them "
                        "(cs231n's reg=0.05: read off as weight decay and written in make_optimizer)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_out(spec):
    module_part, name = split_spec(spec)
    return Path("out") / f"{name or Path(module_part).stem}_port.py"


def cmd_write_port(args):
    from ..port.layers.written import CannotWrite
    from ..port.targets import load_target
    from ..port.writing import written_port
    out = args.out or default_out(args.numpy)
    port.check_outputs(argparse.Namespace(out=out))
    model = load_target(args.numpy, "numpy side")
    try:
        written = written_port(model, data=args.data, style=args.style, numpy_kwargs=args.numpy_kwargs,
                               input_shape=args.input_shape)
    except CannotWrite as exc:
        raise CannotRun(f"cannot write the port: {exc}") from None
    out.write_text(written.source)
    print(f"wrote {out}: class {written.class_name}, make_port(), load_numpy_params(port, params)"
          + (f", make_optimizer(port, lr) (weight decay {written.decay!r})" if written.has_optimizer else ""))
    argv = [args.numpy, f"{out}:make_port", "--no-progress"]
    if args.data is not None:
        argv += ["--data", str(args.data)]
    if args.numpy_kwargs is not None:
        argv += ["--numpy-kwargs", args.numpy_kwargs]
    if args.input_shape is not None:
        argv += ["--input-shape", args.input_shape]
    if written.has_optimizer:
        argv += ["--torch-optimizer", f"{out}:make_optimizer"]
    if written.loss_given:
        argv += ["--loss", f"{out}:loss" if written.loss_given == "loss" else written.loss_given]
    print(f"checked as: python -m compare port {' '.join(argv)}")
    return port.COMMANDS["port"](_port_args(argv))


def _port_args(argv):
    parser = argparse.ArgumentParser(prog="python -m compare")
    port.add_port_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["port", *argv])


COMMANDS = {"write-port": port._refusing(cmd_write_port)}
PREPARE = {"write-port": lambda args: None}
