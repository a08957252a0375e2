"""The reports in a notebook: ``_repr_html_`` and a one-line ``repr``.

Jupyter and VS Code show an object's ``_repr_html_()`` as its output. The
HTML here is self-contained: inline styles only (VS Code renders each output
in its own frame, and viewers strip ``<style>`` blocks), no script, every
text from a model or a report escaped (a layer named ``<lambda>`` stays a
name). A highlighted block sets its text colour with its background, so it
stays readable under a dark theme; everything else inherits the theme's.

Order, for a port check: the verdict, the first mismatch and its diagnosis,
the known differences, the settings and the pairing, the tables per phase
with the failing rows marked, the notes, the training summary (with the
curves as an inline PNG when matplotlib draws them).
"""
import base64
import html
import io
import math

PHASES = ("parameters", "forward", "loss", "backward", "training")
TITLES = {"parameters": "Parameters (copied in from NumPy)",
          "forward": "Forward, in order of execution",
          "loss": "Loss",
          "backward": "Backward, nearest the loss first",
          "training": "Training, step by step"}

FONT = "font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; font-size: 13px;"
MONO = "font-family: SFMono-Regular, Menlo, Consolas, monospace;"
GOOD = "background: #dafbe1; color: #0f3d1a; border: 1px solid #4ac26b;"
BAD = "background: #ffebe9; color: #5c0a0a; border: 1px solid #f85149;"
WARN = "background: #fff8c5; color: #3b2e00; border: 1px solid #d4a72c;"
GREY = "background: #f0f1f3; color: #3a3f45; border: 1px solid #afb8c1;"
BAD_ROW = "background: #ffebe9; color: #5c0a0a;"
FIRST_ROW = BAD_ROW + " font-weight: 600; box-shadow: inset 4px 0 0 #cf222e;"
CELL = "padding: 2px 8px; text-align: left; vertical-align: top; white-space: nowrap;"
NUM = ("padding: 2px 8px; text-align: right; vertical-align: top; white-space: nowrap; "
       "font-variant-numeric: tabular-nums;")
HEAD = ("padding: 2px 8px; text-align: left; border-bottom: 1px solid #8c959f; font-weight: 600; "
        "white-space: nowrap;")
TABLE = "border-collapse: collapse; margin: 4px 0 10px 0;" + MONO + " font-size: 12px;"


def esc(value):
    return html.escape(str(value), quote=True)


def one_line(text):
    return " ".join(str(text).split())


def num(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    value = float(value)
    if value == 0:
        return "0"
    return f"{value:.{digits}g}" if math.isfinite(value) else str(value)


def _badge(word, style):
    return (f'<span style="{style} border-radius: 4px; padding: 1px 8px; font-weight: 700; '
            f'letter-spacing: 0.05em; margin-right: 4px;">{esc(word)}</span> ')


def _code(code):
    return (f'<span style="{MONO} font-weight: 600; border: 1px solid currentColor; '
            f'border-radius: 3px; padding: 0 4px; margin-right: 2px;">{esc(code)}</span> ')


def _banner(word, style, verdict):
    """The badge, then the verdict without its own leading word."""
    text = verdict[len(word) + 1:].lstrip() if verdict.startswith(word + ":") else verdict
    return _box(style, _badge(word, style) + f'<span style="font-weight: 600;">{esc(text)}</span>')


def _plural(n, word):
    return f"{n} {word}{'s' * (n != 1)}"


def _box(style, inner):
    return f'<div style="{style} border-radius: 6px; padding: 8px 12px; margin: 6px 0;">{inner}</div>'


def _heading(text):
    return f'<div style="font-weight: 700; margin: 12px 0 2px 0;">{esc(text)}</div>'


def _table(head, rows, numeric=()):
    """``rows``: ``(cells, row_style, row_class)``; cells are escaped here."""
    out = [f'<table style="{TABLE}"><thead><tr>']
    out += [f'<th style="{HEAD}">{esc(h)}</th>' for h in head]
    out.append("</tr></thead><tbody>")
    for cells, style, cls in rows:
        attrs = (f' class="{cls}"' if cls else "") + (f' style="{style}"' if style else "")
        out.append(f"<tr{attrs}>")
        for k, cell in enumerate(cells):
            out.append(f'<td style="{NUM if k in numeric else CELL}">{cell}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _wrap(parts):
    return (f'<div style="{FONT} line-height: 1.45; max-width: 100%; overflow-x: auto;">'
            + "".join(parts) + "</div>")


# --- a port check --------------------------------------------------------------------------

def _at(fm):
    return f" step {fm['step']}" if fm.get("step") is not None else ""


def port_repr(report):
    """``<PortReport PASS: 14 checks>`` or ``<PortReport FAIL at backward b2 (scale): 14
    checks, 1 failed>``: one line, whatever the names hold."""
    n = len(report.checks)
    failed = sum(1 for c in report.checks if not c.passed)
    trained = f"; {report.training['steps']} training steps" if report.training else ""
    unjudged = f", {report.not_judged['rows']} not judged" if report.not_judged else ""
    if report.passed:
        return one_line(f"<PortReport PASS: {n} checks{unjudged}{trained}>")
    fm = report.first_mismatch or {}
    at = f" at {fm.get('phase')} {fm.get('where')}{_at(fm)}" if fm else ""
    codes = ", ".join(d["code"] for d in report.diagnosis)
    why = f" ({codes})" if codes else ""
    return one_line(f"<PortReport FAIL{at}{why}: {n} checks, {failed} failed{unjudged}{trained}>")


def port_html(report):
    word, style = ("PASS", GOOD) if report.passed else ("FAIL", BAD)
    parts = [_banner(word, style, report.verdict())]
    fm = report.first_mismatch
    if fm:
        parts.append(_box(WARN, _first_mismatch(fm, report.diagnosis)))
    if report.not_judged:
        parts.append(_box(WARN, esc(f"{report.not_judged['rows']} not judged: {report.not_judged['text']}")))
    if report.known:
        items = "".join(f"<li>{_code(k['code'])}{esc(k['text'])}</li>" for k in report.known)
        parts.append(_heading("Known differences (accounted for, not failures)")
                     + f'<ul style="margin: 2px 0 6px 0;">{items}</ul>')
    if report.settings:
        cells = " &middot; ".join(f"{esc(k)} <b>{esc(v)}</b>" for k, v in report.settings.items())
        parts.append(f'<div style="opacity: 0.8; margin: 6px 0;">{cells}</div>')
    if report.pairing:
        rows = [([esc(p.numpy), esc(p.torch), "yes" if p.transposed else ""], None, None)
                for p in report.pairing]
        parts.append(f'<details style="margin: 6px 0;"><summary>Pairing: '
                     f'{_plural(len(report.pairing), "parameter")} (NumPy &harr; torch)</summary>'
                     + _table(["NumPy", "torch", "transposed"], rows) + "</details>")
    others = [c.phase for c in report.checks if c.phase not in PHASES]  # none lost unnamed
    for phase in PHASES + tuple(dict.fromkeys(others)):
        rows = [c for c in report.checks if c.phase == phase]
        if rows:
            parts.append(_phase_table(phase, rows, fm))
    unpaired = report.unpaired or {}
    if unpaired.get("numpy"):
        parts.append(f"<div>Unpaired NumPy layers (no torch module computes them; a functional "
                     f"call such as F.relu?): <b>{esc(', '.join(unpaired['numpy']))}</b></div>")
    if unpaired.get("torch"):
        parts.append(f"<div>Unpaired torch modules: <b>{esc(', '.join(unpaired['torch']))}</b></div>")
    if report.notes:
        items = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
        parts.append(_heading("Notes") + f'<ul style="margin: 2px 0 6px 0;">{items}</ul>')
    if report.training:
        parts.append(_training(report))
    return _wrap(parts)


def _first_mismatch(fm, diagnosis):
    out = [f'<div><b>First mismatch</b>: {esc(fm["phase"])}{esc(_at(fm))}, '
           f'<b style="{MONO}">{esc(fm["where"])}</b> (torch <span style="{MONO}">{esc(fm["torch"])}'
           f'</span>): max abs {esc(num(fm.get("max_abs")))}, max rel {esc(num(fm.get("max_rel")))}</div>']
    if fm.get("detail"):
        out.append(f'<div style="margin-top: 4px;">{esc(fm["detail"])}</div>')
    if diagnosis:
        items = "".join(f'<li>{_code(d["code"])}{esc(d["text"])}</li>' for d in diagnosis)
        out.append(f'<div style="margin-top: 4px;"><b>Likely cause</b></div>'
                   f'<ul style="margin: 2px 0;">{items}</ul>')
    elif fm.get("unexplained"):
        out.append(f'<div style="margin-top: 4px;"><b>Likely cause</b>: {esc(fm["unexplained"])}</div>')
    elif not fm.get("detail"):
        out.append('<div style="margin-top: 4px;"><b>Likely cause</b>: none of the usual porting '
                   'bugs fits</div>')
    return "".join(out)


def _is_first(row, fm):
    return bool(fm) and (row.phase, row.where, row.step) == (fm.get("phase"), fm.get("where"), fm.get("step"))


def _phase_table(phase, rows, fm):
    allowed = any(r.allowance for r in rows)
    head = ["NumPy", "torch", "shape", "max abs", "mean abs", "median abs", "max rel", "median rel",
            "worst at", "expected", "actual"] + (["allowed"] if allowed else []) + ["verdict"]
    body = []
    for r in rows:
        cells = [esc(r.where if r.step is None else f"{r.where} @{r.step}"), esc(r.torch),
                 esc("-" if r.shape is None else r.shape)]
        cells += [esc(num(v)) for v in (r.max_abs, r.mean_abs, r.median_abs, r.max_rel, r.median_rel)]
        cells += [esc("-" if r.worst_index is None else r.worst_index),
                  esc(num(r.worst_expected, 8)), esc(num(r.worst_actual, 8))]
        if allowed:
            cells.append(esc(f"{r.allowance} {num(r.max_allowance)}") if r.allowance else "")
        verdict = r.verdict
        cells.append(esc(verdict) + (f'<div style="opacity: 0.75; white-space: normal;">'
                                     f'{esc(r.note)}</div>' if r.note else ""))
        if r.passed:
            body.append((cells, None, None))
        else:
            first = _is_first(r, fm)
            body.append((cells, FIRST_ROW if first else BAD_ROW,
                         "port-fail port-first" if first else "port-fail"))
    why = rows[0].why if phase != "training" else (
        "tolerance grows with the steps: after k updates, k x rtol x max|expected|")
    failed = sum(1 for r in rows if not r.passed)
    unjudged = sum(1 for r in rows if not r.judged)
    count = _plural(len(rows), "row") + (f", {failed} failed" if failed else (
        f", {unjudged} not judged" if unjudged else ", all ok"))
    return (_heading(f"{TITLES.get(phase, str(phase).capitalize())} ({count})")
            + f'<div style="opacity: 0.75; font-size: 12px;">{esc(why)}</div>'
            + _table(head, body, numeric=set(range(3, 8)) | {9, 10}))


def _training(report):
    tr = report.training
    rel = [float(v) for v in tr.get("max_rel_param") or []]
    worst = max(range(len(rel)), key=rel.__getitem__) if rel else None
    lines = [f"{tr['steps']} steps, batch {tr['batch_size']}, lr {tr['lr']}, NumPy "
             f"{tr['numpy_optimizer']} vs torch {tr['torch_optimizer']}"
             + (f" + {tr['scheduler']}" if tr.get("scheduler") else "")]
    if tr.get("loss_numpy"):
        lines.append(f"loss at the last step: NumPy {num(tr['loss_numpy'][-1], 6)}, torch "
                     f"{num(tr['loss_torch'][-1], 6)}")
    if worst is not None:
        lines.append(f"largest relative parameter difference {num(rel[worst])} (step "
                     f"{tr['step'][worst]}, {tr['worst_param'][worst]}; tolerance there "
                     f"{num(tr['tolerance'][worst])})")
    out = _heading("Training side by side") + "".join(f"<div>{esc(line)}</div>" for line in lines)
    png = _training_png(report)
    if png:
        out += (f'<img alt="loss on both sides and the largest relative parameter difference per '
                f'step" style="max-width: 100%; margin-top: 6px;" src="data:image/png;base64,{png}"/>')
    return out


def _training_png(report):
    """The curves of ``--report``'s ``port_training.png``, base64; None without matplotlib."""
    try:
        from .figure import training_figure
    except ImportError:
        return None
    buffer = io.BytesIO()
    training_figure(report).savefig(buffer, format="png", dpi=72)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --- twins by name -------------------------------------------------------------------------

def twins_repr(report):
    """``<TwinsReport PASS: 12 pairs agree, 2 not checked, 0 differ>``: the verdict, one line."""
    return one_line(f"<TwinsReport {report.verdict()}>")


def _worst(row, phase, key):
    parity = getattr(row, phase)
    value = None if parity is None else parity.worst(key)
    return None if isinstance(value, float) and math.isnan(value) else value


def twins_html(report):
    if report.nothing_checked:
        style, word = GREY, "NOT CHECKED"
    else:
        style, word = (GOOD, "PASS") if report.passed else (BAD, "FAIL")
    parts = [_banner(word, style, report.verdict())]
    s = report.settings
    if s:
        cells = " &middot; ".join(f"{esc(k)} <b>{esc(v)}</b>" for k, v in s.items())
        parts.append(f'<div style="opacity: 0.8; margin: 6px 0;">{cells}</div>')
    body = []
    for r in report.rows:
        verdict = {"passed": "ok", "failed": f"FAIL: {r.reason}",
                   "skipped": f"not checked: {r.reason}"}[r.status]
        cells = [esc(r.name), esc("; ".join(r.inputs) or "-"), esc(r.output or "-")]
        cells += [esc(num(_worst(r, phase, key))) for phase in ("forward", "backward")
                  for key in ("max_abs", "max_rel")]
        cells.append(f'<div style="white-space: normal; min-width: 20em;">{esc(verdict)}'
                     + (f'<div style="opacity: 0.75;">{esc(r.note)}</div>' if r.note else "")
                     + "</div>")
        row_style = {"failed": BAD_ROW, "skipped": "opacity: 0.65; font-style: italic;"}.get(r.status)
        body.append((cells, row_style, {"failed": "port-fail"}.get(r.status)))
    parts.append(_table(["name", "inputs", "output", "fwd max abs", "fwd max rel", "bwd max abs",
                         "bwd max rel", "verdict"], body, numeric={3, 4, 5, 6}))
    parts.append(f"<div>only in numpy: {esc(', '.join(report.only_numpy) or '-')}</div>"
                 f"<div>only in torch: {esc(', '.join(report.only_torch) or '-')}</div>")
    return _wrap(parts)
