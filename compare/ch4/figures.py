"""The book's chapter-4 figures, the step-size study, and the parity figures.

Drawn on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot, no
display needed); each function saves one PNG and returns its path.
"""
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

import numpy_impl

from ..parity import to_numpy

DPI = 100


def _figure(width=6.4, height=4.8):
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)  # the constrained layout already fits everything in
    return path


# --- the book's figures -----------------------------------------------------------------

def plot_tangent(path, x0=5.0):
    """Figure 4-7: ``function_1`` and its tangent at ``x0`` (book: gradient_1d.py)."""
    x = np.arange(0.0, 20.0, 0.1)
    y = numpy_impl.function_1(x)
    tangent = numpy_impl.tangent_line(numpy_impl.function_1, x0)
    slope = numpy_impl.numerical_diff(numpy_impl.function_1, x0)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(x, y, label="f(x) = 0.01 x² + 0.1 x")
    ax.plot(x, tangent(x), "--", label=f"tangent at x = {x0:g} (numerical slope {slope:.15g})")
    ax.plot([x0], [numpy_impl.function_1(x0)], "o", color="C1")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title(f"function_1 and its tangent at {x0:g} (exact slope {0.02 * x0 + 0.1:g})")
    ax.legend()
    return _save(fig, path)


def plot_gradient_field(path):
    """Figure 4-9: the negative gradients of ``function_2`` (book: gradient_2d.py)."""
    x0 = np.arange(-2, 2.5, 0.25)
    x1 = np.arange(-2, 2.5, 0.25)
    X, Y = np.meshgrid(x0, x1)
    points = np.array([X.flatten(), Y.flatten()]).T  # one point per row
    grad = numpy_impl.numerical_gradient_2d(numpy_impl.function_2, points).T
    fig = _figure(6.4, 6.4)
    ax = fig.add_subplot()
    ax.quiver(X.flatten(), Y.flatten(), -grad[0], -grad[1], angles="xy", color="#666666")
    ax.set_xlim([-2, 2])
    ax.set_ylim([-2, 2])
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.set_aspect("equal")
    ax.grid(True)
    ax.set_title("-∇f for f(x0, x1) = x0² + x1²: every arrow points to the minimum", fontsize=10)
    return _save(fig, path)


def descent_paths(init=(-3.0, 4.0), lrs=(0.1, 10.0, 1e-10), step_num=100):
    """``{lr: (final x, history)}`` from ``numpy_impl.gradient_descent`` on ``function_2``."""
    import warnings

    out = {}
    for lr in lrs:
        with warnings.catch_warnings():  # lr=10 makes the step vanish against |x|; expected
            warnings.simplefilter("ignore", RuntimeWarning)
            x, hist = numpy_impl.gradient_descent(numpy_impl.function_2, np.array(init), lr=lr,
                                                  step_num=step_num, history=True)
        out[lr] = (x, hist)
    return out


def plot_descent(path, init=(-3.0, 4.0), lrs=(0.1, 10.0, 1e-10), step_num=100):
    """Figure 4-10 and the text after it: the path for a good, a too large, a too small rate."""
    paths = descent_paths(init, lrs, step_num)
    fig = _figure(15, 5)
    notes = {0.1: "converges to the minimum (0, 0)",
             10.0: "too large: diverges", 1e-10: "too small: hardly moves"}
    for k, lr in enumerate(lrs):
        x, hist = paths[lr]
        ax = fig.add_subplot(1, len(lrs), k + 1)
        pts = np.vstack([hist, x[None, :]])
        ax.plot(pts[:, 0], pts[:, 1], "o-", ms=3, color=f"C{k}")
        ax.plot([pts[0, 0]], [pts[0, 1]], "s", color="k", label=f"start {tuple(init)}")
        ax.axhline(0, ls="--", color="b", lw=0.8)
        ax.axvline(0, ls="--", color="b", lw=0.8)
        moved = float(np.abs(x - np.asarray(init)).max())
        text = f"after {step_num} steps x = [{x[0]:.10g}, {x[1]:.10g}]"
        if lr == 10.0:
            ticks = [-1e12, -1e8, -1e4, 0, 1e4, 1e8, 1e12]
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.set_xlim(-1e14, 1e14)
            ax.set_ylim(-1e14, 1e14)
            text += "\n(symmetric log axes: each step multiplies x by about -19)"
        elif lr == 1e-10:
            text += f"\nlargest move {moved:.2g}"
            ax.set_xlim(-3.5, 0.5)
            ax.set_ylim(-0.5, 4.5)
        else:
            ax.set_xlim(-3.5, 3.5)
            ax.set_ylim(-4.5, 4.5)
        ax.set_title(f"lr = {lr:g}: {notes.get(lr, '')}")
        ax.annotate(text, xy=(0.02, 0.02), xycoords="axes fraction", fontsize=8,
                    bbox=dict(boxstyle="round", fc="white", alpha=0.8))
        ax.set_xlabel("X0")
        ax.set_ylabel("X1")
        ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


# --- the step-size study ----------------------------------------------------------------

STEPS = np.logspace(-1, -16, 151)


def difference_errors(f, dfdx, x, dtype, steps=STEPS):
    """Relative errors of the central and forward differences of ``f`` at ``x`` in ``dtype``.

    Written out here rather than through ``numerical_diff``, which refuses
    ``h`` below the machine epsilon: the study is about what happens there.
    """
    dtype = np.dtype(dtype)
    xd = dtype.type(x)
    exact = float(dfdx(float(x)))
    central, forward = [], []
    with np.errstate(all="ignore"):
        for h in steps:
            hd = dtype.type(h)
            c = (f(xd + hd) - f(xd - hd)) / (dtype.type(2) * hd)
            fw = (f(xd + hd) - f(xd)) / hd
            central.append(abs(float(c) - exact) / abs(exact))
            forward.append(abs(float(fw) - exact) / abs(exact))
    return np.array(central), np.array(forward)


def _study_functions():
    s1 = float(numpy_impl.sigmoid(1.0))
    return [
        ("function_1 at x = 5 (a quadratic: central differences have no truncation error)",
         numpy_impl.function_1, lambda x: 0.02 * x + 0.1, 5.0, 0.0, float(numpy_impl.function_1(5.0))),
        ("sigmoid at x = 1", numpy_impl.sigmoid, lambda x: float(numpy_impl.sigmoid_grad(x)), 1.0,
         abs(s1 * (1 - s1) * (1 - 6 * s1 + 6 * s1 ** 2)), s1),
    ]


def plot_step_size(path, steps=STEPS):
    """Error of central and forward differences against h, float64 and float32, log-log.

    Truncation falls with h (as h² central, h forward); round-off
    ``eps |f| / h`` rises as h shrinks; where ``x + h == x`` the difference is
    0 and the error 100%. The book's h = 1e-4 is marked, and so is where its
    bad example, 1e-50, would sit: far off the axis, in the rounds-to-0 regime.
    """
    fig = _figure(14, 7)
    floor = 1e-18  # exact zeros drawn here, so they stay on a log axis
    for k, (title, f, dfdx, x, f3, fx) in enumerate(_study_functions()):
        ax = fig.add_subplot(1, 2, k + 1)
        for dtype, style in (("float64", "-"), ("float32", "--")):
            central, forward = difference_errors(f, dfdx, x, dtype, steps)
            for errs, label, color in ((central, "central", "C0"), (forward, "forward", "C3")):
                ax.loglog(steps, np.maximum(errs, floor), style, color=color,
                          label=f"{label}, {dtype}")
        eps = np.finfo(np.float64).eps
        exact = abs(dfdx(x))
        model = (f3 * steps ** 2 / 6 + eps * abs(fx) / steps) / exact
        ax.loglog(steps, np.maximum(model, floor), ":", color="gray",
                  label="model, central float64: (h²|f'''|/6 + eps|f|/h) / |f'|")
        ax.axvline(1e-4, color="k", lw=0.8)
        ax.annotate("book's h = 1e-4", xy=(1e-4, 1e-17), xytext=(1.4e-4, 1e-17), fontsize=8)
        ax.axvline(eps ** (1 / 3), color="C0", lw=0.8, ls=":", label="best central h, float64: eps^(1/3)")
        ax.axvline(eps ** 0.5, color="C3", lw=0.8, ls=":", label="best forward h, float64: eps^(1/2)")
        ax.axhline(1.0, color="gray", lw=0.6)
        ax.annotate("h = 1e-50 (the book's bad example) is 34 decades\n"
                    "off this axis: x + h == x, the difference rounds\n"
                    "to 0, error 100% (this line)", xy=(1e-16, 1.0), xytext=(3e-16, 1e-15),
                    fontsize=8, arrowprops=dict(arrowstyle="->"),
                    bbox=dict(boxstyle="round", fc="white", alpha=0.9))
        ax.set_xlim(1e-16, 1e-1)
        ax.set_ylim(floor / 2, 1e2)
        ax.set_xlabel("h")
        ax.set_ylabel("relative error against the exact derivative")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    return _save(fig, path)


# --- training and parity figures --------------------------------------------------------

def plot_accuracy(path, curves):
    """Figure 4-12: train and test accuracy per epoch, both sides overlaid."""
    fig = _figure()
    ax = fig.add_subplot()
    impl = curves["settings"]["impl"]
    batch = curves["settings"]["batch_size"]
    for side, style in (("numpy", "-"), ("torch", "--")):
        h = curves[side]
        epochs = np.asarray(h["eval_iters"]) * batch / 60000
        name = "numpy" if side == "numpy" else f"torch {impl}"
        ax.plot(epochs, h["train_acc"], style, marker="o", ms=3, color="C0", label=f"train acc, {name}")
        ax.plot(epochs, h["test_acc"], style, marker="s", ms=3, color="C1", label=f"test acc, {name}")
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="lower right")
    ax.set_title("accuracy (the two sides overlap)")
    return _save(fig, path)


def plot_loss_parity(path, curves):
    """Both loss curves overlaid, and their difference per iteration on a log axis."""
    a = np.asarray(curves["numpy"]["train_loss"], dtype=float)
    b = np.asarray(curves["torch"].get("book_loss", curves["torch"]["train_loss"]), dtype=float)
    n = min(a.size, b.size)
    it = np.arange(n)
    diff = np.abs(a[:n] - b[:n])
    rtol = curves["loss_rtol"]
    fig = _figure(10, 7)
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    top.plot(it, a[:n], color="C0", lw=1, label="numpy")
    top.plot(it, b[:n], "--", color="C1", lw=1, label=f"torch {curves['settings']['impl']}")
    top.set_ylabel("training loss (book's, with 1e-7)")
    top.legend()
    top.set_title("loss per iteration")
    nonzero = diff > 0
    bottom.semilogy(it[nonzero], diff[nonzero], ".", ms=2, color="C2", label="|numpy - torch|")
    bottom.semilogy(it, rtol * np.abs(a[:n]), color="C3", lw=1, label=f"tolerance {rtol:g} x |loss|")
    same = int(np.count_nonzero(~nonzero))
    bottom.set_title(f"|difference| (bit-identical at {same} of {n} iterations, not drawn)")
    bottom.set_xlabel("iteration")
    bottom.set_ylabel("absolute difference")
    bottom.legend(loc="upper left")
    return _save(fig, path)


def _tiles(w1, cols=10, side=28):
    """W1 (784, hidden) as a grid of 28x28 tiles, one per hidden unit; NaN between tiles."""
    hidden = w1.shape[1]
    rows = int(np.ceil(hidden / cols))
    mosaic = np.full((rows * (side + 1) - 1, cols * (side + 1) - 1), np.nan)
    for j in range(hidden):
        r, c = divmod(j, cols)
        mosaic[r * (side + 1): r * (side + 1) + side, c * (side + 1): c * (side + 1) + side] = \
            w1[:, j].reshape(side, side)
    return mosaic


def plot_gradient_errors(path, paths_result):
    """Largest error per parameter for each pair, and W1's error as 28x28 tiles per hidden unit."""
    pairs = paths_result.pairs
    grads = paths_result.gradients
    fig = _figure(16, 9)
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 0.9])
    ax = fig.add_subplot(grid[0, :])
    names = numpy_impl.PARAM_NAMES
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        vals = []
        for p in pairs:
            row = next((r for r in p.rows if r.name == name), None)
            v = row.max_abs if row is not None else np.nan
            vals.append(v if np.isfinite(v) and v > 0 else 1e-20)
        ax.bar(np.arange(len(pairs)) + k * width, vals, width, label=name, log=True)
    ax.set_xticks(np.arange(len(pairs)) + 0.4 - width / 2)
    ax.set_xticklabels([p.label.replace(" vs ", "\nvs ") for p in pairs], fontsize=7)
    ax.set_ylabel("max |actual - expected|")
    ax.set_title("largest gradient error per parameter and pair (0 drawn at 1e-20)")
    ax.legend(ncol=4)
    panels = [("torch backprop", "numpy backprop", "round-off: torch vs numpy backprop"),
              ("numpy numerical", "numpy backprop", "numerical vs backprop: the 1e-7 gap and h"),
              ("numpy numerical", "module[book]", "numerical vs the book loss's own gradient")]
    for k, (a, e, title) in enumerate(panels):
        sub = fig.add_subplot(grid[1, k])
        if a not in grads or e not in grads:
            sub.set_axis_off()
            sub.set_title(f"{title}: not computed", fontsize=9)
            continue
        ga, ge = (to_numpy(grads[p]["W1"]).astype(float) for p in (a, e))
        err = np.abs(ga - ge)
        positive = err[err > 0]
        mosaic = _tiles(err)
        if positive.size:
            im = sub.imshow(np.where(mosaic > 0, mosaic, np.nan), cmap="viridis",
                            norm=LogNorm(vmin=positive.min(), vmax=positive.max()))
            fig.colorbar(im, ax=sub, fraction=0.03)
        else:
            sub.imshow(mosaic, cmap="gray")
        sub.set_title(f"W1 |error|, a 28x28 tile per hidden unit\n{title}", fontsize=9)
        sub.set_axis_off()
    return _save(fig, path)


BOOK_FIGURES = {
    "tangent.png": plot_tangent,
    "gradient_field.png": plot_gradient_field,
    "descent.png": plot_descent,
    "step_size.png": plot_step_size,
}


def book_figures(out):
    """The four figures that need no training: ``{name: path}``."""
    out = Path(out)
    return {name: fn(out / name) for name, fn in BOOK_FIGURES.items()}


def parity_figures(out, curves=None, paths_result=None):
    """The figures drawn from results: ``curves`` as a dict (``CurveComparison.to_dict()``)."""
    out = Path(out)
    made = {}
    if curves is not None:
        made["accuracy.png"] = plot_accuracy(out / "accuracy.png", curves)
        made["loss_parity.png"] = plot_loss_parity(out / "loss_parity.png", curves)
    if paths_result is not None:
        made["gradient_errors.png"] = plot_gradient_errors(out / "gradient_errors.png", paths_result)
    return made
