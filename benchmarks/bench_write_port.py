"""How much writing the port adds to checking it: ``compare write-port`` on the book's
chapter-7 ``SimpleConvNet`` (its own size: 30 filters 5x5, 4320 -> 100 -> 10) against
``compare port`` checking the file it wrote, each a whole process (Python's start,
importing torch, loading the model and MNIST, the check), the two in alternation,
medians of ``--rounds``.

    python benchmarks/bench_write_port.py [--rounds 5] [--model FILE.py:factory] [--threads N]

Prints a Markdown table (the command, its exit status and verdict, the median wall time,
the rounds) and the ratio of the two medians, measured in this one run, with the machine;
then the writing alone (``compare.write_port``, in this process, the model loaded and
MNIST read once before), the median of as many rounds. ``--threads`` sets
``OMP_NUM_THREADS`` for every process (unset: torch's default).
Exit status: 0 when both commands passed, 1 when one did not, 2 when it cannot run.
"""
import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "examples/ch7_conv/numpy_net.py:make_net"


def run(argv, env):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "compare", *argv, "--no-progress"], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    last = (done.stdout + done.stderr).strip().splitlines()
    return wall, done.returncode, re.sub(r" \[[\d.]+ s\]$", "", last[-1]) if last else ""


def writing_alone(model, rounds, env):
    """The median seconds of ``compare.write_port`` on a fresh model, in this process (the
    batch it writes from read once before)."""
    os.environ.update({k: v for k, v in env.items() if k in ("MNIST_ROOT", "OMP_NUM_THREADS")})
    sys.path.insert(0, str(ROOT))
    from compare import write_port
    from compare.port.targets import load_target
    write_port(load_target(model, "numpy side"))  # MNIST read and cached
    times = []
    for _ in range(rounds):
        fresh = load_target(model, "numpy side")
        start = time.perf_counter()
        write_port(fresh)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        print("ERROR: --rounds must be at least 1", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    env.setdefault("MNIST_ROOT", str(ROOT.parent / "shared" / "mnist"))
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        written = Path(tmp) / "written_port.py"
        _, rc, verdict = run(["write-port", args.model, "--out", str(written)], env)
        if rc == 2 or not written.exists():
            print(f"ERROR: write-port cannot run on {args.model}: {verdict}", file=sys.stderr)
            return 2
        commands = {
            "check alone": ["port", args.model, f"{written}:make_port"],
            "write and check": ["write-port", args.model, "--out", str(Path(tmp) / "again.py")],
        }
        times, seen = {name: [] for name in commands}, {}
        for _ in range(args.rounds):
            for name, command in commands.items():
                wall, rc, verdict = run(command, env)
                times[name].append(wall)
                seen[name] = (rc, verdict)
    print("| command | exit | verdict | median wall (s) | rounds (s) |")
    print("|---|---|---|---|---|")
    shown = {"check alone": f"compare port {args.model} WRITTEN.py:make_port",
             "write and check": f"compare write-port {args.model}"}
    for name in commands:
        rc, verdict = seen[name]
        rounds = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"| `{shown[name]}` | {rc} | {verdict} | {statistics.median(times[name]):.2f} | {rounds} |")
    ratio = statistics.median(times["write and check"]) / statistics.median(times["check alone"])
    print(f"\nwrite and check / check alone: {ratio:.2f} (medians of {args.rounds} alternated rounds)")
    print(f"writing alone, in process: {writing_alone(args.model, args.rounds, env):.2f} s "
          f"(median of {args.rounds})")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, threads: "
          f"{args.threads or 'torch default'}")
    return 0 if all(rc == 0 for rc, _ in seen.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
