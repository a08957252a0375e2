"""The book's ch04/train_neuralnet.py: ``python -m numpy_impl.train_neuralnet``."""
import argparse


def parse_args(argv=None, *, extra=None):
    parser = argparse.ArgumentParser(description="Train the book's 784-50-10 network on MNIST.")
    parser.add_argument("--iters", type=int, default=10000, help="iterations (default 10000)")
    parser.add_argument("--seed", type=int, default=None, help="seed (the book's np.random.seed)")
    parser.add_argument("--gradient", choices=("backprop", "numerical"), default="backprop")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    if extra:
        extra(parser)
    return parser.parse_args(argv)


def print_evaluation(history):
    """Print ``train acc, test acc | a, b`` as the book does, once per new evaluation."""
    def on_iteration(i, hist, stream):
        if hist["eval_iters"] and hist["eval_iters"][-1] == i:
            print("train acc, test acc | " + str(hist["train_acc"][-1]) + ", "
                  + str(hist["test_acc"][-1]), flush=True)
    return on_iteration


def main(argv=None):
    args = parse_args(argv)
    from compare.mnist import load_mnist  # the shared loader (the script's one outside need)

    from . import TwoLayerNet, train

    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=args.seed)
    history = train(network, x_train, t_train, x_test, t_test, iters_num=args.iters,
                    batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                    gradient=args.gradient, callback=print_evaluation(None))
    return 1 if history["diverged"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
