"""The chapter-4 commands: gradcheck, train, curves, figures, report, bench.

``prepare`` runs first: it checks every option, the device and the output
folder and loads the data, and raises ``CannotRun`` (exit status 2) for
what no run can use. Each ``cmd_*`` then takes the parsed arguments and
returns ``(ok, verdict)``; ``compare.cli`` prints the verdict and turns
``ok`` into the exit status.
"""
import functools
import json
import math
import os
import sys
from pathlib import Path

from .output import jsonable, print_report, write_json
from .status import CannotRun


def _add_common(p, *, training=False):
    p.add_argument("--seed", type=int, default=0, help="the book's np.random.seed (default 0)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    if training:
        p.add_argument("--iters", type=int, default=10000, help="iterations (default 10000)")
        p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
        p.add_argument("--impl", choices=("literal", "module"), default="literal",
                       help="torch side: the book's TwoLayerNet (literal) or TwoLayerNetModule")
        p.add_argument("--eval-every", type=int, default=None,
                       help="accuracy every N iterations (default: once per epoch, as the book)")


def _add_gradcheck(p):
    p.add_argument("--h", type=float, default=None,
                   help="finite-difference step (default 1e-4 in float64, 1e-2 in float32)")
    p.add_argument("--method", choices=("fast", "loop"), default="fast",
                   help="numerical gradient: fast, or the book's loop (minutes)")
    p.add_argument("--labels", choices=("one-hot", "index"), default="one-hot")


def add_parsers(sub):
    """The chapter-4 subcommands, on ``sub`` (an argparse sub-parser set)."""
    p = sub.add_parser("gradcheck", help="run every gradient path and cross-check every pair")
    _add_common(p)
    _add_gradcheck(p)
    p.add_argument("--brief", action="store_true", help="one line per pair instead of full tables")
    p = sub.add_parser("train", help="the book's training, one side or both")
    _add_common(p, training=True)
    p.add_argument("--side", choices=("numpy", "torch", "both"), default="both")
    p = sub.add_parser("curves", help="train both sides and compare the curves step by step")
    _add_common(p, training=True)
    p = sub.add_parser("figures", help="the book's figures and the parity figures (PNG)")
    _add_common(p, training=True)
    _add_gradcheck(p)
    p.add_argument("--book-only", action="store_true",
                   help="only the figures that need no MNIST (tangent, field, descent, step size)")
    p = sub.add_parser("report", help="gradcheck, curves and figures on one Markdown page")
    _add_common(p, training=True)
    _add_gradcheck(p)
    p = sub.add_parser("bench", help="timings against the book's own code (see BENCHMARKS.md)")
    p.add_argument("which", choices=("numerical-gradient", "training", "numerical-training",
                                     "script", "loader", "port"),
                   help="script, loader: whole processes against the book's script and pickle "
                        "loader; port: the compare port command as a user runs it")
    p.add_argument("--device", default=None, help="also time this torch device, e.g. cuda")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    p.add_argument("--iters", type=int, default=10000, help="training iterations (default 10000)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of fast paths")
    p.add_argument("--rounds", type=int, default=1,
                   help="training: interleaved rounds of every run, medians reported (default 1)")
    p.add_argument("--side", choices=("numpy", "torch"), default="numpy",
                   help="numerical-training: which side (default numpy)")


@functools.lru_cache(maxsize=None)
def load_data():
    """MNIST as the book's script loads it (one-hot labels), read once per process."""
    from ..mnist import load_mnist
    return load_mnist(normalize=True, one_hot_label=True)


@functools.lru_cache(maxsize=None)
def load_index_data():
    """MNIST with index labels, as the benchmarks take it, read once per process."""
    from ..mnist import load_mnist
    return load_mnist()


# --- before any work: every option, the device, the output folder, the data -------------

def _check_out(out):
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {out}: cannot make the folder ({exc.strerror or exc})") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the folder is not writable")


def check_options(args):
    """The values argparse lets through that no run can use, named by their option."""
    from numpy_impl.validation import (check_learning_rate, check_positive_int, check_seed,
                                       check_step)
    from torch_impl.validation import check_device

    if args.command == "bench":
        for option in ("iters", "repeats", "rounds"):
            check_positive_int(getattr(args, option), f"--{option}")
        if args.device is not None:
            check_device(args.device, "--device")
    else:
        check_seed(args.seed, "--seed")
        check_positive_int(args.batch_size, "--batch-size")
        check_device(args.device, "--device")
        if hasattr(args, "iters"):  # the training commands
            check_positive_int(args.iters, "--iters")
            check_learning_rate(args.lr, "--lr")
            if args.eval_every is not None:
                check_positive_int(args.eval_every, "--eval-every")
        if getattr(args, "h", None) is not None:
            check_step(args.h, args.dtype, "--h")
    _check_out(args.out)


def prepare(args):
    """Refuse, as ``CannotRun``, what no run can use; then load the data the command needs."""
    try:
        check_options(args)
    except (ValueError, TypeError) as exc:
        raise CannotRun(exc) from exc
    if getattr(args, "book_only", False):
        return
    try:  # missing or broken MNIST files: the loader says which folder and what to do
        (load_index_data if args.command == "bench" else load_data)()
    except (FileNotFoundError, ValueError) as exc:
        raise CannotRun(exc) from exc


# --- subcommands ------------------------------------------------------------------------

def run_gradcheck(args):
    from ..ch4.paths import gradcheck
    return gradcheck(load_data(), seed=args.seed, batch_size=args.batch_size, dtype=args.dtype,
                     device=args.device, h=args.h, method=args.method, labels=args.labels)


def cmd_gradcheck(args):
    result = run_gradcheck(args)
    print_report(result.to_text(full=not args.brief), result.verdict())
    path = write_json(args.out / "gradcheck.json", result.to_dict())
    print(f"wrote {path}")
    return result.passed, result.verdict()


def _write_line(text):
    from tqdm import tqdm
    tqdm.write(text)  # keeps a running progress bar intact
    sys.stdout.flush()


def cmd_train(args):
    from numpy_impl.train_neuralnet import print_evaluation

    from ..ch4.curves import labels_in, train_numpy, train_torch

    data = labels_in(load_data(), args.dtype)
    common = dict(seed=args.seed, iters=args.iters, batch_size=args.batch_size, lr=args.lr,
                  dtype=args.dtype, eval_every=args.eval_every, progress=not args.no_progress)
    sides = ("numpy", "torch") if args.side == "both" else (args.side,)
    histories, seconds = {}, {}
    for side in sides:
        name = "numpy" if side == "numpy" else f"torch {args.impl}"
        prefix = f"[{name}] " if len(sides) > 1 else ""
        printer = print_evaluation(prefix, _write_line)
        if side == "numpy":
            histories[side], seconds[name] = train_numpy(data, callback=printer, **common)
        else:
            histories[side], seconds[name] = train_torch(data, impl=args.impl, device=args.device,
                                                         callback=printer, **common)
    if len(sides) == 2:
        print(_side_by_side(histories, args.impl))
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    settings = {k: getattr(args, k) for k in ("seed", "iters", "batch_size", "lr", "dtype",
                                              "impl", "device", "eval_every", "side")}
    write_json(args.out / "train.json", {"settings": settings, "seconds": seconds, **histories})
    diverged = [s for s, h in histories.items() if h["diverged"]]
    final = "; ".join(f"{s}: train acc {h['train_acc'][-1]:.4f}, test acc {h['test_acc'][-1]:.4f}"
                      for s, h in histories.items() if h["train_acc"])
    if diverged:
        return False, f"FAIL: training diverged on {', '.join(diverged)}"
    return True, f"DONE: {args.iters} iterations; {final}"


def _side_by_side(histories, impl):
    a, b = histories["numpy"], histories["torch"]
    lines = [f"{'iter':>6}  {'numpy train':>11}  {'numpy test':>10}  {'torch train':>11}  {'torch test':>10}"]
    for k, i in enumerate(a["eval_iters"]):
        tb = (b["train_acc"][k], b["test_acc"][k]) if k < len(b["train_acc"]) else (math.nan,) * 2
        lines.append(f"{i:>6}  {a['train_acc'][k]:>11.4f}  {a['test_acc'][k]:>10.4f}  "
                     f"{tb[0]:>11.4f}  {tb[1]:>10.4f}")
    return f"side by side (torch {impl}):\n" + "\n".join(lines)


def _curve_settings(args):
    return {"seed": args.seed, "iters": args.iters, "batch_size": args.batch_size, "lr": args.lr,
            "dtype": args.dtype, "impl": args.impl, "device": str(args.device),
            "eval_every": args.eval_every}


def run_curves(args):
    from ..ch4.curves import compare_curves
    return compare_curves(load_data(), seed=args.seed, iters=args.iters,
                          batch_size=args.batch_size, lr=args.lr, dtype=args.dtype,
                          impl=args.impl, device=args.device, eval_every=args.eval_every,
                          progress=not args.no_progress)


def cmd_curves(args):
    result = run_curves(args)
    print_report(result.to_text(), result.verdict())
    path = write_json(args.out / "curves.json", result.to_dict())
    print(f"wrote {path}")
    return result.passed, result.verdict()


def curves_for(args):
    """``curves.json`` from ``--out`` when it was made with these settings, else a new run."""
    path = args.out / "curves.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text())
            if saved.get("settings") == _curve_settings(args):
                print(f"using {path} (same settings)")
                return saved
        except (ValueError, OSError):
            pass
    result = run_curves(args)
    print(result.to_text())
    curves = jsonable(result.to_dict())
    write_json(path, curves)
    return curves


def make_figures(args, curves=None, paths_result=None):
    from ..ch4.figures import book_figures, parity_figures
    made = book_figures(args.out)
    if not getattr(args, "book_only", False):
        curves = curves_for(args) if curves is None else curves
        paths_result = run_gradcheck(args) if paths_result is None else paths_result
        made.update(parity_figures(args.out, curves, paths_result))
    return made, curves, paths_result


def cmd_figures(args):
    made, curves, paths_result = make_figures(args)
    for path in made.values():
        print(f"wrote {path}")
    ok = True
    if curves is not None:
        ok = curves["passed"] and paths_result.passed
    return ok, f"{'DONE' if ok else 'FAIL'}: {len(made)} figures in {args.out}" + (
        "" if ok else " (a parity check failed: see gradcheck / curves)")


def cmd_report(args):
    from ..ch4.report import write_report
    grad = run_gradcheck(args)
    print(grad.to_text(full=False))
    write_json(args.out / "gradcheck.json", grad.to_dict())
    curves = curves_for(args)
    made, _, _ = make_figures(args, curves=curves, paths_result=grad)
    path = write_report(args.out, grad, curves, made)
    print(f"wrote {path}")
    ok = grad.passed and curves["passed"]
    return ok, ("PASS" if ok else "FAIL") + f": gradcheck {grad.verdict()}; curves {curves['verdict']}"


def cmd_bench(args):
    from ..ch4 import benchmark
    data = load_index_data() if args.which in ("numerical-gradient", "training",
                                               "numerical-training") else None
    if args.which == "numerical-gradient":
        result = benchmark.bench_numerical_gradient(data, repeats=args.repeats, device=args.device)
    elif args.which == "training":
        result = benchmark.bench_training(data, iters=args.iters, device=args.device,
                                          rounds=args.rounds)
    elif args.which == "numerical-training":
        result = benchmark.bench_numerical_training(data, iters=args.iters, side=args.side,
                                                    device=args.device)
    elif args.which == "script":
        result = benchmark.bench_script(iters=args.iters, rounds=args.rounds)
    elif args.which == "loader":
        result = benchmark.bench_loader(rounds=args.rounds)
    else:
        from ..port.benchmark import bench_port
        result = bench_port(rounds=args.rounds)
    print(benchmark.to_markdown(result))
    print("machine:", benchmark.machine_info(args.device))
    print(f"wrote {benchmark.save(result, args.out, args.device)}")
    return True, f"DONE: {args.which}"


COMMANDS = {"bench": cmd_bench, "gradcheck": cmd_gradcheck, "train": cmd_train, "curves": cmd_curves,
            "figures": cmd_figures, "report": cmd_report}
PREPARE = {name: prepare for name in COMMANDS}
