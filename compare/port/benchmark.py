"""How long ``python -m compare port`` takes, as a user runs it: whole processes, imports
and MNIST (from its cache) included, interleaved rounds, medians.

Rows: the interpreter importing ``compare`` and torch (the floor every run
pays), the worked example (the book's chapter-5 layer net, 784-50-10,
against its ``nn.Module`` port, NumPy gradient by backprop), and the same
net seen through ``params`` and ``loss`` alone, whose gradient is checked by
central differences along random directions; then the book's chapter-7
``SimpleConvNet`` at its default size (30 filters of 5x5, 100 hidden units)
against its ``nn.Module`` port, by backprop and from its loss alone (where the
zero conv bias on blank MNIST patches puts ReLU inputs at exactly 0: points
with no derivative, counted and judged by their one-sided slopes).
"""
import sys

from ..timing import interleaved, process_env

EXAMPLE = "examples/layer_net"
CONV = "examples/ch7_conv"
COMMANDS = {
    "imports": [sys.executable, "-c", "import compare, compare.port, torch"],
    "backprop": [sys.executable, "-m", "compare", "port", f"{EXAMPLE}/numpy_net.py:make_net",
                 f"{EXAMPLE}/torch_net.py:make_net"],
    "loss-only": [sys.executable, "-m", "compare", "port",
                  f"{EXAMPLE}/numpy_net.py:make_loss_only_net", f"{EXAMPLE}/torch_net.py:make_net"],
    "conv-backprop": [sys.executable, "-m", "compare", "port", f"{CONV}/numpy_net.py:make_net",
                      f"{CONV}/torch_net.py:make_net", "--no-progress"],
    "conv-loss-only": [sys.executable, "-m", "compare", "port", f"{CONV}/numpy_net.py:make_loss_only_net",
                       f"{CONV}/torch_net.py:make_net", "--no-progress"],
}
NAMES = {"imports": "python -c 'import compare, compare.port, torch'",
         "backprop": "compare port, NumPy backprop (784-50-10, MNIST batch of 100)",
         "loss-only": "compare port, NumPy loss only (central differences along 4 directions)",
         "conv-backprop": "compare port, the book's SimpleConvNet (default size), NumPy backprop",
         "conv-loss-only": "compare port, the same SimpleConvNet, NumPy loss only"}


def bench_port(rounds=5, root=None):
    """``rounds`` interleaved rounds of each command; ``fraction_of_first`` is over the
    import floor, ``vs_backprop`` over the backprop run."""
    from ..mnist import default_root, load_mnist

    root = default_root() if root is None else root
    load_mnist(root)  # the cache, as a user's second run finds it
    env = process_env(root)
    from ..timing import timed_process
    for cmd in COMMANDS.values():
        timed_process(cmd, env)  # files and libraries in the OS cache for all alike
    runs = {name: (lambda cmd=cmd: timed_process(cmd, env)) for name, cmd in COMMANDS.items()}
    rows = interleaved(runs, rounds, NAMES)
    base = rows[1]["seconds"]
    for row in rows:
        row["vs_backprop"] = row["seconds"] / base
    return {"benchmark": "port", "rounds": rounds,
            "commands": {k: " ".join(v[1:]) for k, v in COMMANDS.items()}, "rows": rows}
