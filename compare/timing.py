"""Timing helpers every benchmark shares: the machine, whole processes timed in
interleaved rounds (medians), a Markdown table and the JSON record.

Speed is measured in benchmarks, never in tests.
"""
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]


def machine_info(device=None):
    import torch

    info = {
        "cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if device and str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def process_env(root):
    return dict(os.environ, MNIST_ROOT=str(root), MPLBACKEND="Agg",
                PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT),
                                                         os.environ.get("PYTHONPATH")])))


def timed_process(cmd, env):
    """Wall seconds of ``cmd`` from start to exit, and the last line it printed."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=PROJECT, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n"
                           f"{done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    return seconds, lines[-1] if lines else ""


def interleaved(runs, rounds, names):
    """``rounds`` rounds of ``runs[name]()`` for each name in turn; the rows, medians.

    Each row also lists the machine's 1-minute load average as each of its
    runs began: on a shared machine it tells a quiet round from a busy one.
    """
    times = {name: [] for name in runs}
    load = {name: [] for name in runs}
    last_line = {}
    for _ in range(rounds):
        for name, run in runs.items():
            load[name].append(round(os.getloadavg()[0], 2))
            seconds, last_line[name] = run()
            times[name].append(seconds)
    first = statistics.median(next(iter(times.values())))
    return [{"what": names[name], "seconds": statistics.median(times[name]),
             "rounds": times[name], "fraction_of_first": statistics.median(times[name]) / first,
             "load_average": load[name], "last_line": last_line[name]} for name in runs]


def to_markdown(result):
    rows = result["rows"]
    keys = [k for k in rows[0] if k != "what"]
    for row in rows[1:]:
        keys += [k for k in row if k not in keys and k != "what"]
    lines = ["| what | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for row in rows:
        cells = [_fmt(row.get(k)) for k in keys]
        lines.append(f"| {row['what']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def save(result, out_dir, device=None):
    os.makedirs(out_dir, exist_ok=True)
    result = dict(result, machine=machine_info(device))
    path = os.path.join(out_dir, f"bench_{result['benchmark']}.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    return path
