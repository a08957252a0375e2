"""The book's ch04/train_neuralnet.py: ``python -m numpy_impl.train_neuralnet``."""
import argparse


def parse_args(argv=None, *, extra=None):
    parser = argparse.ArgumentParser(description="Train the book's 784-50-10 network on MNIST.")
    parser.add_argument("--iters", type=int, default=10000, help="iterations (default 10000)")
    parser.add_argument("--seed", type=int, default=None, help="seed (the book's np.random.seed)")
    parser.add_argument("--gradient", choices=("backprop", "numerical"), default="backprop")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--checkpoint", metavar="PATH", default=None,
                        help="save the run here (.npz) at the end, on Ctrl-C and every "
                             "--checkpoint-every iterations")
    parser.add_argument("--checkpoint-every", metavar="N", type=int, default=None,
                        help="also save every N iterations (needs --checkpoint)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in --checkpoint")
    if extra:
        extra(parser)
    args = parser.parse_args(argv)
    if args.checkpoint is None and (args.resume or args.checkpoint_every is not None):
        parser.error("--resume and --checkpoint-every need --checkpoint PATH")
    return args


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


def main(argv=None):
    args = parse_args(argv)
    from compare.mnist import load_mnist  # the shared loader (the script's one outside need)

    from . import TwoLayerNet, train
    from .checkpoint import load_checkpoint, train_resumable

    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=args.seed)
    run = dict(iters_num=args.iters, batch_size=args.batch_size, learning_rate=args.lr,
               seed=args.seed, gradient=args.gradient, callback=print_evaluation())
    if args.checkpoint is None:
        history = train(network, x_train, t_train, x_test, t_test, **run)
        return 1 if history["diverged"] else 0
    try:
        history = train_resumable(network, x_train, t_train, x_test, t_test, **run,
                                  checkpoint_path=args.checkpoint,
                                  checkpoint_every=args.checkpoint_every, resume=args.resume)
    except KeyboardInterrupt:
        done = load_checkpoint(args.checkpoint)["iteration"]
        print(f"interrupted: {done} iterations saved in {args.checkpoint}; "
              f"run again with --resume to continue", flush=True)
        return 130  # the shell's code for a Ctrl-C
    return 1 if history["diverged"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
