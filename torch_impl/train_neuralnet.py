"""The book's ch04/train_neuralnet.py: ``python -m torch_impl.train_neuralnet``.

``numpy_impl.train_neuralnet`` with two more options, ``--impl`` and
``--device``: the same parser, option checks, printed lines, checkpoints and
exit status (0 finished, 1 diverged, 2 cannot run, 130 Ctrl-C).
"""
from numpy_impl import train_neuralnet as book_script

from .validation import check_device


def _torch_options(parser):
    parser.add_argument("--impl", choices=("literal", "module"), default="literal",
                        help="literal: the book's TwoLayerNet; module: TwoLayerNetModule "
                             "with autograd and torch.optim.SGD")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")


def parse_args(argv=None, *, extra=None):
    def options(parser):
        _torch_options(parser)
        if extra:
            extra(parser)
    return book_script.parse_args(argv, extra=options)


print_evaluation = book_script.print_evaluation


def main(argv=None):
    args = parse_args(argv)
    try:
        book_script.check_options(args)
        check_device(args.device, "--device")  # before MNIST is read, not after
        data = book_script.load_data()
    except (ValueError, TypeError, FileNotFoundError) as exc:
        return book_script.cannot_run(exc)

    import torch

    from . import TwoLayerNet, TwoLayerNetModule, train
    from .checkpoint import load_checkpoint, train_resumable

    (x_train, t_train), (x_test, t_test) = data
    data = ((torch.from_numpy(x_train), torch.from_numpy(t_train)),
            (torch.from_numpy(x_test), torch.from_numpy(t_test)))
    net_class = TwoLayerNet if args.impl == "literal" else TwoLayerNetModule
    network = net_class(input_size=784, hidden_size=50, output_size=10, seed=args.seed,
                        device=args.device)
    return book_script.run(args, network, data, train, train_resumable, load_checkpoint)


if __name__ == "__main__":
    raise SystemExit(main())
