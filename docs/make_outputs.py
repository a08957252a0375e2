"""Rewrite every command output quoted in README.md, docs/*.md and examples/*/README.md
from a fresh run.

A quoted output is a fenced block right after a marker line:

    <!-- output: python -m compare port NUMPY TORCH -->
    <!-- output full: python -m compare port NUMPY TORCH -->

The block becomes ``$ COMMAND`` and what the command prints: with ``full`` all of it,
otherwise the verdict's part (from ``first mismatch:`` to the end; for a pass, its
known differences, notes and the ``PASS:`` line), after a ``...`` line where something
was left out. Run from the project root, as the pages' commands are written:

    python docs/make_outputs.py            # rewrite the pages
    python docs/make_outputs.py --check    # exit 1 if a page's verdicts are stale
    python docs/make_outputs.py README.md  # only the pages named

Commands run as the pages show them, with ``--no-progress`` added to ``compare``
commands (a progress bar is no output to quote), a ``--report`` folder and the files
the pages name (``own.npz``) put in a temporary folder, and this folder's absolute
path shown relative. ``tests/test_readme_verdicts.py`` uses the same functions.
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "examples").glob("*/README.md"))]
MARKER = re.compile(r"^<!-- output( full)?: (.+?) -->$")
# the lines that carry a verdict: what the test compares with a fresh run
VERDICT = re.compile(r"^(PASS:|FAIL:|first mismatch:|likely cause:|  \[\w+\] |\d+ parity checks?:)")
TIME = re.compile(r" \[[\d.]+ s\]$")  # the machine's timing, not the verdict's


def markers(text):
    """``(line index, full, command)`` for each marker of a page."""
    found = []
    for i, line in enumerate(text.splitlines()):
        m = MARKER.match(line.strip())
        if m:
            found.append((i, bool(m.group(1)), m.group(2)))
    return found


def all_markers():
    """``(page, full, command)`` over every page."""
    return [(page, full, command) for page in PAGES
            for _, full, command in markers(page.read_text())]


def _own_npz(path):
    sys.path.insert(0, str(ROOT))
    try:
        from tests.courses.regression import write_npz
    finally:
        sys.path.remove(str(ROOT))
    write_npz(path)


def _seq2seq_npz(path, which):
    sys.path.insert(0, str(ROOT))
    try:
        from tests import book_seq2seq
    finally:
        sys.path.remove(str(ROOT))
    x, t = getattr(book_seq2seq, which)()
    np.savez(path, x=x, t=t)


# files a page's command reads, and how to make them
FILES = {"own.npz": _own_npz,
         "seq2seq.npz": lambda path: _seq2seq_npz(path, "pairs"),  # source ids, targets
         "gru_tokens.npz": lambda path: _seq2seq_npz(path, "tokens")}


def run(command, timeout=600):
    """The command's stdout and stderr, as a user in the project root sees them."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = command
        for name, make in FILES.items():
            if re.search(rf"(?<![\w/.]){re.escape(name)}\b", argv):
                make(Path(tmp) / name)
                argv = re.sub(rf"(?<![\w/.]){re.escape(name)}\b", str(Path(tmp) / name), argv)
        argv = re.sub(r"--report \S+", f"--report {shlex.quote(str(Path(tmp) / 'report'))}", argv)
        if argv.startswith("python -m compare "):
            argv += " --no-progress"
        argv = argv.replace("python -m", f"{shlex.quote(sys.executable)} -m", 1)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
        done = subprocess.run(argv, shell=True, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, env=env)
        out = (done.stdout + done.stderr).replace(tmp + "/", "")
    return out.replace(str(ROOT) + "/", "").rstrip("\n").splitlines()


def shown(lines, full):
    """What a page quotes of an output."""
    if full:
        return lines
    start = next((i for i, line in enumerate(lines) if line.startswith("first mismatch:")), None)
    if start is None:
        kept = [line for line in lines
                if line.startswith(("known difference", "note:", "PASS:", "FAIL:"))]
    else:
        kept = lines[start:]
    return (["..."] if len(kept) < len(lines) else []) + kept


def verdict_lines(lines):
    """The lines of an output that carry its verdict, without the machine's timing."""
    return [TIME.sub("", line.rstrip()) for line in lines if VERDICT.match(line)]


def block(command, lines):
    return ["```text", f"$ {command}", *lines, "```"]


def rewrite(page, outputs):
    """The page with each marker's block replaced by ``outputs[command]``."""
    lines = page.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        m = MARKER.match(lines[i].strip())
        i += 1
        if not m:
            continue
        if i < len(lines) and lines[i].startswith("```"):  # the old block goes
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            i += 1
        out.extend(block(m.group(2), outputs[(bool(m.group(1)), m.group(2))]))
    return "\n".join(out) + "\n"


def quoted(page):
    """``{(full, command): the lines the page quotes}``."""
    lines = page.read_text().splitlines()
    found = {}
    for i, full, command in markers(page.read_text()):
        body = []
        j = i + 2  # the marker, then the opening fence, then ``$ command``
        while j < len(lines) and not lines[j].startswith("```"):
            body.append(lines[j])
            j += 1
        found[(full, command)] = body[1:]
    return found


def main(argv):
    check = "--check" in argv
    named = [a for a in argv if not a.startswith("--")]
    stale = 0
    for page in PAGES:
        if named and not any(page == (ROOT / n).resolve() for n in named):
            continue
        wanted = {(full, command) for _, full, command in markers(page.read_text())}
        if not wanted:
            continue
        outputs = {}
        for full, command in sorted(wanted, key=lambda k: k[1]):
            print(f"{page.relative_to(ROOT)}: {command}", file=sys.stderr)
            outputs[(full, command)] = shown(run(command), full)
        if check:
            have = quoted(page)
            for key, lines in outputs.items():
                if verdict_lines(have.get(key, [])) != verdict_lines(lines):
                    print(f"stale: {page.relative_to(ROOT)}: {key[1]}")
                    stale += 1
        else:
            page.write_text(rewrite(page, outputs))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
