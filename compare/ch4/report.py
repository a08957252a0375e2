"""One Markdown page: the tolerance policy, the gradient check, the curves, the figures."""
from pathlib import Path

from numpy_impl.two_layer_net import PARAM_NAMES

from ..parity import tolerance


def _g(value, digits=3):
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    return f"{value:.{digits}g}"


def policy_table():
    """The tolerance policy as a Markdown table (the numbers ``compare.parity`` uses)."""
    rows = ["| pair kind | float64 (h = 1e-4) | float32 (h = 1e-2) | what it allows for |",
            "| --- | --- | --- | --- |"]
    why = {"analytic": "round-off of a few matmuls (backprop vs autograd vs the module)",
           "numerical-pair": "+ round-off of the loss over h (two numerical gradients)",
           "numerical": "+ truncation h²·|f'''|/6 (numerical vs the exact gradient of the same loss)"}
    for kind in ("analytic", "numerical-pair", "numerical"):
        cells = [str(tolerance(kind, d)) for d in ("float64", "float32")]
        rows.append(f"| `{kind}` | {cells[0]} | {cells[1]} | {why[kind]} |")
    return "\n".join(rows)


def gradcheck_section(result):
    s = result.settings
    lines = [f"Seed {s.get('seed')}, the first batch of the book's stream ({s['batch_size']} images, "
             f"{s.get('labels', 'one-hot')} labels), {s['dtype']} on {s['device']}, h = {s['h']:g}, "
             f"numerical method `{s['method']}`.", "",
             "| actual | expected | kind | rtol | atol | 1e-7 gap allowed | max abs err | max rel err | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in result.pairs:
        gap = _g(p.worst("max_allowance")) if p.allowance_name else "-"
        verdict = "ok" if p.passed else "**FAIL** " + ", ".join(p.failed)
        lines.append(f"| {p.actual_name} | {p.expected_name} | {p.kind} | {_g(p.tolerance.rtol)} | "
                     f"{_g(p.tolerance.atol)} | {gap} | {_g(p.worst('max_abs'))} | "
                     f"{_g(p.worst('max_rel'))} | {verdict} |")
    lines += ["", "Per parameter (max abs error):", "",
              "| pair | W1 | b1 | W2 | b2 |", "| --- | --- | --- | --- | --- |"]
    for p in result.pairs:
        by = {r.name: r for r in p.rows}
        lines.append(f"| {p.label} | " + " | ".join(
            _g(by[n].max_abs) if n in by else "-" for n in PARAM_NAMES) + " |")
    if result.gap:
        lines += ["", "**The 1e-7 gap.** " + result.gap_line() + ". Backprop, autograd and the module "
                  "differentiate the cross-entropy without the `1e-7`; the numerical gradient "
                  "differentiates the book's `loss`, with it. The difference is this gap, computed in "
                  "closed form (`compare.gap`) and allowed for in its own column; the tolerances "
                  "themselves stay those of round-off and finite differences. Against the module's "
                  "`loss=\"book\"` gradient (the same function) the numerical gradients agree without "
                  "any allowance."]
    lines += ["", f"Verdict: **{result.verdict()}**"]
    return "\n".join(lines)


def curves_section(curves):
    s = curves["settings"]
    n, t = curves["numpy"], curves["torch"]
    lines = [f"Seed {s['seed']}, {s['iters']} iterations, batch {s['batch_size']}, lr {s['lr']}, "
             f"{s['dtype']} on {s['device']}, torch `{s['impl']}`.", "",
             "| measure | value |", "| --- | --- |",
             f"| max abs loss deviation | {_g(curves['max_abs'])} |",
             f"| max rel loss deviation | {_g(curves['max_rel'])} (tolerance {_g(curves['loss_rtol'])}) |",
             f"| worst iteration | {curves['worst_iter']} |",
             f"| first iteration out of tolerance | {curves['first_out'] if curves['first_out'] is not None else 'none'} |",
             f"| accuracies | {'identical' if curves['acc_equal'] else 'differ by up to ' + _g(curves['acc_max_diff'])} |"]
    if curves.get("module_loss_gap") is not None:
        lines.append(f"| module's own loss vs the book's | {_g(curves['module_loss_gap'])} relative: "
                     f"the 1e-7 gap, not drift |")
    for side, sec in curves.get("seconds", {}).items():
        lines.append(f"| time, {side} | {sec:.1f} s |")
    lines += ["", "| iteration | numpy train acc | torch train acc | numpy test acc | torch test acc |",
              "| --- | --- | --- | --- | --- |"]
    for k, i in enumerate(n["eval_iters"]):
        tr = t["train_acc"][k] if k < len(t["train_acc"]) else float("nan")
        te = t["test_acc"][k] if k < len(t["test_acc"]) else float("nan")
        lines.append(f"| {i} | {n['train_acc'][k]:.4f} | {tr:.4f} | {n['test_acc'][k]:.4f} | {te:.4f} |")
    lines += ["", f"Verdict: **{curves['verdict']}**"]
    return "\n".join(lines)


FIGURE_CAPTIONS = {
    "tangent.png": "function_1 and its tangent at x = 5 (book figure 4-7).",
    "gradient_field.png": "The negative gradients of function_2 (book figure 4-9).",
    "descent.png": "Gradient descent on function_2 from (-3, 4): lr 0.1 converges, lr 10.0 "
                   "diverges, lr 1e-10 hardly moves (book figure 4-10 and the text after it).",
    "step_size.png": "The step-size study: relative error of central and forward differences as "
                     "h runs from 1e-1 to 1e-16, float64 and float32. Truncation falls with h, "
                     "round-off (eps·|f|/h) rises; the book's h = 1e-4 is marked, and its 1e-50 "
                     "would be far off the axis, where x + h == x and the difference is 0.",
    "accuracy.png": "Train and test accuracy per epoch, both sides overlaid (book figure 4-12).",
    "loss_parity.png": "Both loss curves overlaid, and their absolute difference per iteration.",
    "gradient_errors.png": "Largest error per parameter and pair; W1's error as a 28x28 tile per "
                           "hidden unit.",
}


def render_report(gradcheck, curves, figures):
    parts = ["# Chapter 4 parity report: NumPy and PyTorch, side by side", "",
             f"Gradient check: **{gradcheck.verdict()}**  ",
             f"Curves: **{curves['verdict']}**", "",
             "## Tolerance policy", "",
             "Each pair of gradients is compared element by element with "
             "`|actual - expected| <= atol + rtol * |expected|` (as `torch.testing.assert_close`), "
             "with bounds derived from where the error comes from (see `compare/parity.py`):", "",
             policy_table(), "",
             "## Gradient check: every path, every pair", "", gradcheck_section(gradcheck), "",
             "## Training curves, step by step", "", curves_section(curves), "",
             "## Figures", ""]
    for name in figures:
        parts += [f"### {name[:-4].replace('_', ' ')}", "", FIGURE_CAPTIONS.get(name, ""), "",
                  f"![{name}]({name})", ""]
    return "\n".join(parts)


def write_report(out, gradcheck, curves, figures):
    """Write ``report.md`` in ``out`` (figures referenced by name, beside it)."""
    path = Path(out) / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(gradcheck, curves, {Path(p).name: p for p in figures.values()}))
    return path
