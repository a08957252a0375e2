"""Rows a draw the tape could not answer reaches: not judged, counted and said.

Where the port draws what the NumPy side's draws cannot stand for (a random op
the tape does not answer, a draw of another shape, more draws than were
recorded), that pass runs on two random streams from there on: the layer
outputs after the draw, the scores, the loss and every gradient (each depends
on the loss) compare two different computations. They are neither passed nor
failed: each is marked not judged, and the report says how many draws were
missed, which, and where. What came before the first missed draw, and what
draws nothing (the parameters, evaluation mode), is judged as usual.
"""


def leave_unjudged(run):
    tape = getattr(run.np, "tape", None)
    missed = list(getattr(tape, "missed", None) or [])
    # every pass of the port on the batch misses the same draws: those of its recorded pass
    # (placed) stand for them all
    placed = [m for m in missed if m.side == "torch" and m.where is not None]
    if placed:
        missed = placed + [m for m in missed if m.side == "numpy"]
    if not missed:
        return
    t_recs = run.t_capture.records if getattr(run, "t_capture", None) is not None else []
    places = [m.where for m in missed if m.side == "torch" and m.where is not None]
    first = min(places) if places else 0
    if any(m.side == "numpy" for m in missed):
        first = 0
    why = f"{len(missed)} draw{'s' if len(missed) != 1 else ''} not shared"
    rows = [row for row in run.report.checks if _touched(row, run.context.get(id(row), {}), first)]
    for row in rows:
        row.unjudged = why
        row.passed = True  # neither passed nor failed: it counts as no failure
    run.report.not_judged = {
        "rows": len(rows),
        "draws": [{"side": m.side, "call": m.call, "shape": list(m.shape),
                   "where": _place(m, t_recs)} for m in missed],
        "text": _text(missed, t_recs, len(rows)),
    }
    run.report.notes.append(run.report.not_judged["text"])


def _touched(row, ctx, first):
    if row.phase == "parameters" or ctx.get("mode") == "eval":
        return False
    if row.phase == "forward" and "t_index" in ctx:
        return ctx["t_index"] >= first
    return True  # the scores, the loss, the gradients, the running statistics after a pass


def _place(miss, t_recs):
    if miss.side != "torch" or miss.where is None:
        return None
    return f"before {t_recs[miss.where].key}'s output" if miss.where < len(t_recs) else "after the last layer"


def _text(missed, t_recs, rows):
    seen = {}
    for m in missed:
        place = _place(m, t_recs)
        key = (m.text(), place)
        seen[key] = seen.get(key, 0) + 1
    listed = "; ".join(f"{text}{f' {place}' if place else ''}{f' ({n}x)' if n > 1 else ''}"
                       for (text, place), n in seen.items())
    return (f"{len(missed)} random draw{'s' if len(missed) != 1 else ''} could not be answered with the "
            f"NumPy side's ({listed}): from there on the two sides draw from two random streams, "
            f"so {rows} comparison{'s' if rows != 1 else ''} after it {'are' if rows != 1 else 'is'} "
            f"not judged (neither passed nor failed); {_advice(missed)}")


def _advice(missed):
    """How to draw so that the NumPy draws can answer: samples as samples, masks as masks."""
    samples = [m for m in missed if m.call in ("torch.multinomial", "torch.randint")]
    if samples and len(samples) == len(missed):
        return ("draw the port's samples with torch.multinomial (or torch.randint), as many "
                "values as the NumPy np.random.choice draws, in the same order, each one the "
                "port's probabilities allow, to have them judged")
    return ("draw the port's masks with nn.Dropout, F.dropout, torch.rand or torch.bernoulli, "
            "once per NumPy draw, to have them judged")


def training_unjudged(report, missed):
    """Training side by side on draws the tape missed: the step rows compare two random
    streams, and are not judged."""
    rows = [row for row in report.checks if row.phase == "training" and row.judged]
    for row in rows:
        row.unjudged = f"{len(missed)} draw{'s' if len(missed) != 1 else ''} not shared in training"
        row.passed = True
    text = (f"training: {len(missed)} random draw{'s' if len(missed) != 1 else ''} could not be "
            f"answered with the NumPy side's ({_text_list(missed)}): the {len(rows)} training "
            f"rows are not judged (neither passed nor failed)")
    before = report.not_judged or {"rows": 0, "draws": [], "text": ""}
    report.not_judged = {
        "rows": before["rows"] + len(rows),
        "draws": before["draws"] + [{"side": m.side, "call": m.call, "shape": list(m.shape),
                                     "where": None} for m in missed],
        "text": "; ".join(filter(None, [before["text"], text]))}
    report.notes.append(text)


def _text_list(missed):
    seen = {}
    for m in missed:
        seen[m.text()] = seen.get(m.text(), 0) + 1
    return "; ".join(f"{t}{f' ({n}x)' if n > 1 else ''}" for t, n in seen.items())
