"""``--report DIR``: the report as a Markdown page and a figure of the error per layer.

The figure shows, for each compared output, its worst error divided by what
its tolerance allows there (the ``worst_ratio`` of the table): below 1 the
pair agrees, above 1 it does not. Forward (and the loss) on the left, in
order of execution; backward on the right, nearest the loss first. A log
scale, so round-off (1e-6 and below) and a real bug (1e3 and above) are both
visible.
"""
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FLOOR = 1e-8  # an exact match (ratio 0) is drawn here, on the log axis


def plot_errors(report, path):
    panels = [("forward and loss", [c for c in report.checks if c.phase in ("forward", "loss")]),
              ("backward (nearest the loss first)", [c for c in report.checks if c.phase == "backward"])]
    panels = [(title, rows) for title, rows in panels if rows]
    fig = Figure(figsize=(5.5 * max(len(panels), 1), 4.8))
    FigureCanvasAgg(fig)
    for k, (title, rows) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        ratios = [c.worst_ratio if isinstance(c.worst_ratio, float) and np.isfinite(c.worst_ratio)
                  else (1e12 if not c.passed else FLOOR) for c in rows]
        ratios = [max(r, FLOOR) for r in ratios]
        colors = ["tab:gray" if not c.judged else "tab:green" if c.passed else "tab:red" for c in rows]
        positions = np.arange(len(rows))
        ax.bar(positions, ratios, color=colors)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="tolerance")
        ax.set_yscale("log")
        ax.set_xticks(positions)
        ax.set_xticklabels([c.where for c in rows], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("worst error / allowed")
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(report.verdict()[:90], fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def plot_training(report, path):
    """Loss on both sides per step, and the largest relative parameter difference per
    step (``max |torch - numpy| / max |numpy|`` over the parameters) against the
    tolerance, which grows linearly with the steps."""
    path = Path(path)
    training_figure(report).savefig(path, dpi=100)
    return path


def training_figure(report):
    """``plot_training``'s figure, unsaved (a notebook embeds it)."""
    tr = report.training
    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(tr["step"], tr["loss_numpy"], label="NumPy", linewidth=2)
    ax.plot(tr["step"], tr["loss_torch"], label="torch", linestyle="--")
    ax.set_xlabel("step")
    ax.set_ylabel("loss on the step's batch")
    ax.set_title("loss, both sides")
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    rel = np.maximum(np.asarray(tr["max_rel_param"], dtype=float), 1e-18)
    ax.semilogy(tr["step"], rel, label="largest relative parameter difference")
    states = [np.nan if v is None else v for v in tr.get("max_rel_state") or ()]
    if states and not np.all(np.isnan(states)):  # over a corpus's windows: the carried state
        ax.semilogy(tr["step"], np.maximum(states, 1e-18), label="largest relative state difference")
    ax.semilogy(tr["step"], tr["tolerance"], color="black", linestyle="--", label="tolerance")
    fm = report.first_mismatch
    if fm and fm.get("phase") == "training":
        ax.axvline(fm["step"], color="tab:red", linewidth=1,
                   label=f"first mismatch: step {fm['step']} ({fm['where']})")
    ax.set_xlabel("step")
    ax.set_title("torch vs NumPy parameters" + (" and carried state" if states else ""))
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def write_report(report, out_dir):
    """``port.md``, ``port_errors.png`` and, after training, ``port_training.png`` in
    ``out_dir``; returns the Markdown's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure = plot_errors(report, out_dir / "port_errors.png")
    figures = [figure.name]
    if report.training:
        figures.append(plot_training(report, out_dir / "port_training.png").name)
    page = out_dir / "port.md"
    page.write_text(report.to_markdown(figures))
    return page
