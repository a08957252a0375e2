"""The book's ch04/train_neuralnet.py: ``python -m numpy_impl.train_neuralnet``.

Exit status, as every command line of the project: 0 when the run finished,
1 when it diverged, 2 when it cannot run as asked (a bad option, missing
MNIST, an unusable checkpoint), said in one line on stderr before any work;
130 after a Ctrl-C that saved a checkpoint. ``torch_impl.train_neuralnet``
builds on this script's parser and loop.
"""
import argparse
import sys
from pathlib import Path

from .validation import check_learning_rate, check_positive_int, check_seed

CANNOT_RUN = 2


def parse_args(argv=None, *, extra=None):
    parser = argparse.ArgumentParser(description="Train the book's 784-50-10 network on MNIST.")
    parser.add_argument("--iters", type=int, default=10000, help="iterations (default 10000)")
    parser.add_argument("--seed", type=int, default=None, help="seed (the book's np.random.seed)")
    parser.add_argument("--gradient", choices=("backprop", "numerical"), default="backprop")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    if extra:
        extra(parser)
    parser.add_argument("--checkpoint", metavar="PATH", default=None,
                        help="save the run here (.npz) at the end, on Ctrl-C and every "
                             "--checkpoint-every iterations")
    parser.add_argument("--checkpoint-every", metavar="N", type=int, default=None,
                        help="also save every N iterations (needs --checkpoint)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in --checkpoint")
    args = parser.parse_args(argv)
    if args.checkpoint is None and (args.resume or args.checkpoint_every is not None):
        parser.error("--resume and --checkpoint-every need --checkpoint PATH")
    return args


def check_options(args):
    """The values argparse lets through that no run can use, named by their option."""
    check_positive_int(args.iters, "--iters")
    check_positive_int(args.batch_size, "--batch-size")
    check_learning_rate(args.lr, "--lr")
    check_seed(args.seed, "--seed")
    if args.checkpoint_every is not None:
        check_positive_int(args.checkpoint_every, "--checkpoint-every")
    if args.checkpoint is not None:
        _check_checkpoint(args)


def _check_checkpoint(args):
    """A checkpoint that can be written, and with --resume one of this very run."""
    path = Path(args.checkpoint)
    if path.is_dir():
        raise ValueError(f"--checkpoint {path} is a folder; give a file path such as "
                         f"{path / 'run.npz'}")
    if not path.parent.is_dir():
        raise ValueError(f"--checkpoint {path}: the folder {path.parent} does not exist")
    if not args.resume:
        return
    from .checkpoint import load_checkpoint

    try:
        saved = load_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:  # no file, or not a checkpoint
        raise type(exc)(f"--checkpoint: {exc}") from exc
    settings = {"--lr": ("learning_rate", float(args.lr)),
                "--batch-size": ("batch_size", args.batch_size),
                "--seed": ("seed", args.seed), "--gradient": ("gradient", args.gradient),
                "eval_every": ("eval_every", None)}  # the script evaluates once per epoch
    for option, (key, value) in settings.items():
        if key in saved["meta"] and saved["meta"][key] != value:
            raise ValueError(f"{option} {value} differs from the checkpoint's "
                             f"{saved['meta'][key]!r} ({path}); resume with the settings "
                             f"of the interrupted run")
    if saved["dtype"] != "float64" or saved["params"]["W1"].shape != (784, 50):
        raise ValueError(f"--checkpoint {path} holds a {saved['params']['W1'].shape[0]}-"
                         f"{saved['params']['W1'].shape[1]}-{saved['params']['W2'].shape[1]} "
                         f"{saved['dtype']} network, not this script's 784-50-10 float64 one")


def cannot_run(exc):
    """Say why the script cannot run, in one line on stderr; the exit status for it."""
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "train_neuralnet"
    print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
    return CANNOT_RUN


def load_data():
    """MNIST as the book's script loads it: normalized, one-hot labels."""
    from compare.mnist import load_mnist  # the shared loader (the script's one outside need)

    return load_mnist(normalize=True, one_hot_label=True)


def print_evaluation(prefix="", write=None):
    """A ``train`` callback printing ``train acc, test acc | a, b`` as the book
    does, once per new evaluation; ``write(line)`` replaces ``print``."""
    def on_iteration(i, hist, stream):
        if hist["eval_iters"] and hist["eval_iters"][-1] == i:
            line = (prefix + "train acc, test acc | " + str(hist["train_acc"][-1]) + ", "
                    + str(hist["test_acc"][-1]))
            if write is None:
                print(line, flush=True)
            else:
                write(line)
    return on_iteration


def run(args, network, data, train, train_resumable, load_checkpoint):
    """The book's loop on ``network`` with the script's options; returns the exit status."""
    (x_train, t_train), (x_test, t_test) = data
    settings = dict(iters_num=args.iters, batch_size=args.batch_size, learning_rate=args.lr,
                    seed=args.seed, gradient=args.gradient, callback=print_evaluation())
    if args.checkpoint is None:
        history = train(network, x_train, t_train, x_test, t_test, **settings)
        return 1 if history["diverged"] else 0
    try:
        history = train_resumable(network, x_train, t_train, x_test, t_test, **settings,
                                  checkpoint_path=args.checkpoint,
                                  checkpoint_every=args.checkpoint_every, resume=args.resume)
    except KeyboardInterrupt:
        done = load_checkpoint(args.checkpoint)["iteration"]
        print(f"interrupted: {done} iterations saved in {args.checkpoint}; "
              f"run again with --resume to continue", flush=True)
        return 130  # the shell's code for a Ctrl-C
    return 1 if history["diverged"] else 0


def main(argv=None):
    args = parse_args(argv)
    try:
        check_options(args)
        data = load_data()
    except (ValueError, TypeError, FileNotFoundError) as exc:
        return cannot_run(exc)

    from . import TwoLayerNet, train
    from .checkpoint import load_checkpoint, train_resumable

    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=args.seed)
    return run(args, network, data, train, train_resumable, load_checkpoint)


if __name__ == "__main__":
    raise SystemExit(main())
