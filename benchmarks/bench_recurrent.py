"""How long `compare port` takes on the recurrent examples, as a user runs it: each check a
whole process (Python's start, importing torch, loading both models, the check), timed in
alternation with the worked example of the layer net, medians of ``--rounds``.

    python benchmarks/bench_recurrent.py [--rounds 3] [--threads N]

Prints a Markdown table (the check, its verdict and exit status, the median wall time, the
ratio to the worked example's median in the same run) and the machine. ``--threads`` sets
``OMP_NUM_THREADS`` for every process (torch's thread pool; unset: torch's default).
Exit status: 0 when every check gave the verdict it is listed with, 1 otherwise.
"""
import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
R, C = "examples/rnn_lm", "examples/captioning"
TOKENS, CAPTIONS = f"--data {R}/tokens.npz", f"--data {C}/captions.npz --loss model"
WINDOWS = f"--data {R}/corpus.npz --batch 4 --time-size 5 --steps 5 --lr 0.5"
WORKED = ("the worked example (layer net, MNIST batch 100)",
          "examples/layer_net/numpy_net.py:make_net examples/layer_net/torch_net.py:make_net", 0)
CHECKS = [
    ("SimpleRnnlm vs nn.RNN", f"{R}/numpy_lm.py:make_simple_rnnlm {R}/torch_lm.py:make_rnn {TOKENS}", 0),
    ("Rnnlm vs nn.LSTM", f"{R}/numpy_lm.py:make_rnnlm {R}/torch_lm.py:make_lstm {TOKENS}", 0),
    ("Rnnlm vs time-major nn.LSTM", f"{R}/numpy_lm.py:make_rnnlm {R}/torch_lm.py:make_seq_first_lstm {TOKENS}", 0),
    ("Rnnlm vs LSTMCell loop", f"{R}/numpy_lm.py:make_rnnlm {R}/torch_lm.py:make_cell_loop {TOKENS}", 0),
    ("Rnnlm vs literal port", f"{R}/numpy_lm.py:make_rnnlm {R}/torch_lm.py:make_literal {TOKENS}", 0),
    ("Rnnlm vs batch_first bug", f"{R}/numpy_lm.py:make_rnnlm {R}/bugs.py:make_batch_first {TOKENS}", 1),
    ("Rnnlm vs gate_order bug", f"{R}/numpy_lm.py:make_rnnlm {R}/bugs.py:make_gate_order {TOKENS}", 1),
    ("Rnnlm vs double_bias bug", f"{R}/numpy_lm.py:make_rnnlm {R}/bugs.py:make_double_bias {TOKENS}", 1),
    ("Rnnlm vs nn.LSTM, 5 windows trained", f"{R}/numpy_lm.py:make_rnnlm {R}/torch_train.py:make_lstm {WINDOWS}", 0),
    ("Rnnlm vs nn.LSTM, 5 windows clipped", f"{R}/numpy_lm.py:make_rnnlm {R}/torch_train.py:make_lstm {WINDOWS} --max-grad-norm 0.1", 0),
    ("5 windows, double_bias bug", f"{R}/numpy_lm.py:make_rnnlm {R}/torch_train.py:make_double_bias {WINDOWS}", 1),
    ("5 windows, state_reset bug", f"{R}/numpy_lm.py:make_rnnlm {R}/torch_train.py:make_state_reset {WINDOWS}", 1),
    ("BetterRnnlm (dropout, tied), 5 windows", f"{R}/numpy_lm.py:make_better_rnnlm {R}/torch_train.py:make_better {WINDOWS}", 0),
    ("5 windows, tied_weights bug", f"{R}/numpy_lm.py:make_better_rnnlm {R}/torch_train.py:make_better {WINDOWS} --torch-optimizer {R}/torch_optimizers.py:sgd_by_layer", 1),
    ("captioning RNN vs nn.RNN", f"{C}/numpy_captioning.py:make_rnn {C}/torch_captioning.py:make_rnn_port {CAPTIONS}", 0),
    ("captioning LSTM vs nn.LSTM", f"{C}/numpy_captioning.py:make_lstm {C}/torch_captioning.py:make_lstm_port {CAPTIONS}", 0),
    ("captioning LSTM vs loss_mask bug", f"{C}/numpy_captioning.py:make_lstm {C}/torch_captioning.py:make_lstm_token_mean {CAPTIONS}", 1),
]


def run(args, env):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "compare", "port", *args.split(), "--no-progress"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    last = (done.stdout + done.stderr).strip().splitlines()
    verdict = re.sub(r" \[[\d.]+ s\]$", "", last[-1]) if last else ""
    return wall, done.returncode, verdict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    env.setdefault("MNIST_ROOT", str(ROOT.parent / "shared" / "mnist"))
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    times = {name: [] for name, _, _ in [WORKED, *CHECKS]}
    seen = {}
    for _ in range(args.rounds):
        for name, command, _ in CHECKS:  # the worked example before each check: alternated
            for label, line in ((WORKED[0], WORKED[1]), (name, command)):
                wall, rc, verdict = run(line, env)
                times[label].append(wall)
                seen[label] = (rc, verdict)
    worked = statistics.median(times[WORKED[0]])
    print("| check | exit | verdict | median wall (s) | / worked example |")
    print("|---|---|---|---|---|")
    wrong = 0
    for name, _, expected in [WORKED, *CHECKS]:
        rc, verdict = seen[name]
        wrong += rc != expected
        median = statistics.median(times[name])
        shown = verdict if len(verdict) < 60 else verdict[:40] + " ... " + verdict[-30:]
        print(f"| {name} | {rc} | {shown} | {median:.2f} | {median / worked:.2f} |")
    threads = args.threads or "torch's default"
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, threads: {threads}; {args.rounds} rounds, medians")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
