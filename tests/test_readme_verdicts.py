"""Every command output quoted in README.md and docs/*.md: its verdict lines match a fresh run.

The pages show what a user will see; a change in the checker that turns one of those
verdicts (a PASS into a FAIL, another place or another cause) must show up here, not in
a user's terminal. Each quoted output follows a marker that names its command, and
``docs/make_outputs.py`` writes it; the verdict lines (``PASS:``, ``FAIL:``, ``first
mismatch:``, each ``[code]`` under ``likely cause:``) are compared, the machine's timing
at the end of a verdict left out.
"""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_make_outputs():
    spec = importlib.util.spec_from_file_location("make_outputs", ROOT / "docs" / "make_outputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_outputs = _load_make_outputs()
MARKERS = make_outputs.all_markers()
QUOTED = {(page, full, command): lines for page in make_outputs.PAGES
          for (full, command), lines in make_outputs.quoted(page).items()}


def _ids(markers):
    return [f"{page.name}:{command[len('python -m '):][:80]}" for page, _, command in markers]


def test_the_pages_quote_their_outputs():
    # counted so that a broken parser cannot pass on nothing: the README's first check
    # (a pass, a fail), the guide's runs, one per cause in the trap catalogue, the fixture,
    # the captioning example's ports
    per_page = {page.relative_to(ROOT).as_posix(): sum(1 for p, _, _ in MARKERS if p == page)
                for page in make_outputs.PAGES}
    assert per_page["README.md"] == 4
    assert per_page["docs/port-guide.md"] == 21
    assert per_page["docs/traps.md"] == 43
    assert per_page["docs/python-api.md"] == 1
    assert per_page["examples/captioning/README.md"] == 5
    assert per_page["examples/rnn_lm/README.md"] == 12
    assert len(MARKERS) == 86


def test_the_readme_reaches_a_first_pass_within_60_lines():
    head = (ROOT / "README.md").read_text().splitlines()[:60]
    assert 'pip install -e ".[dev]"' in head  # what CI installs (.ci/run)
    assert any(line.startswith("PASS:") for line in head)
    assert any(line.startswith("FAIL:") and "likely:" in line for line in head)
    assert "## What it finds" in head


def test_every_quoted_output_has_its_verdict():
    for key, lines in QUOTED.items():
        assert make_outputs.verdict_lines(lines), f"{key[0].name}: no verdict quoted for {key[2]}"


def test_every_cause_in_the_catalogue_is_shown_by_its_own_command():
    traps = (ROOT / "docs" / "traps.md").read_text()
    causes = traps.split("## The causes")[1].split("\n## ")[0]
    inside = traps.split("## Layers seen from inside")[1].split("\n## ")[0]
    recurrent = traps.split("## Recurrent nets")[1].split("\n## ")[0]
    sections = (re.split(r"\n### ", causes)[1:] + re.split(r"\n### ", inside)[1:]
                + re.split(r"\n### ", recurrent)[1:])
    assert len(sections) >= 25
    for section in sections:
        if not section.startswith("`"):  # a section of codes not checked yet
            continue
        code = section.split("`")[1]
        quoted = [line for line in section.splitlines() if line.strip().startswith(f"[{code}]")]
        assert quoted, f"traps.md: {code} has no quoted [{code}] line"


def test_no_output_is_quoted_without_its_marker():
    # a "$ python -m ..." line in a fenced block is a quoted run; each must be rewritten
    # by docs/make_outputs.py, so each must sit right under its marker
    for page in make_outputs.PAGES:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ python -m"):
                assert i >= 2 and make_outputs.MARKER.match(lines[i - 2].strip()), \
                    f"{page.name}:{i + 1}: {line[:80]} has no output marker"


def test_the_timing_is_left_out_of_the_comparison():
    assert make_outputs.verdict_lines(["PASS: the port agrees (16 checks) [1.3 s]"]) == \
        make_outputs.verdict_lines(["PASS: the port agrees (16 checks) [12.0 s]"]) == \
        ["PASS: the port agrees (16 checks)"]


def _scripts():
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10 has no tomllib: the section's `name = "value"` lines
        section = text.split("[project.scripts]")[1].split("\n[")[0]
        return dict(re.findall(r'^([\w-]+) = "([^"]+)"', section, re.M))
    return tomllib.loads(text)["project"]["scripts"]


def test_both_commands_are_declared_and_importable():
    scripts = _scripts()
    assert scripts["check-torch-port"] == "compare.cli:port_main"
    assert scripts["dlfs-compare"] == "compare.cli:main"
    from compare import cli
    assert callable(cli.main) and callable(cli.port_main)


def test_check_torch_port_is_the_port_subcommand(monkeypatch):
    from compare import cli
    seen = []
    monkeypatch.setattr(cli, "main", lambda argv=None: seen.append(argv) or 0)
    assert cli.port_main(["a.py:net", "b.py:port", "--steps", "3"]) == 0
    assert seen == [["port", "a.py:net", "b.py:port", "--steps", "3"]]


@pytest.mark.slow
@pytest.mark.parametrize("page, full, command", MARKERS, ids=_ids(MARKERS))
def test_a_quoted_verdict_matches_a_fresh_run(page, full, command):
    fresh = make_outputs.shown(make_outputs.run(command, timeout=300), full)
    assert make_outputs.verdict_lines(QUOTED[(page, full, command)]) == \
        make_outputs.verdict_lines(fresh)
