"""Every `compare port` output quoted in the README: its verdict line matches a fresh run.

The README shows what a user will see; a change in the checker that turns one of those
verdicts (a PASS into a FAIL, or another place or cause) must show up here, not in a
user's terminal. The time at the end of a verdict line is the machine's and is left out.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERDICT = ("PASS", "FAIL")


def quoted_commands(text):
    """``(command, verdict line)`` for each ``$ python -m compare port ...`` in a fenced block
    whose output shows a verdict."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ python -m compare port"):
                i += 1
                continue
            command = lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("$ "):
                j += 1
            verdicts = [line for line in lines[i + 1:j] if line.startswith(VERDICT)]
            if verdicts:
                found.append((command, verdicts[-1]))
            i = j
    return found


def without_time(line):
    return re.sub(r" \[[\d.]+ s\]$", "", line.strip())


COMMANDS = quoted_commands((ROOT / "README.md").read_text())


def test_the_readme_quotes_verdicts():
    assert len(COMMANDS) >= 15  # the parser still finds the README's examples


@pytest.mark.slow
@pytest.mark.parametrize("command, verdict", COMMANDS, ids=[c[:90] for c, _ in COMMANDS])
def test_a_quoted_verdict_matches_a_fresh_run(command, verdict, tmp_path):
    if "own.npz" in command:  # the README says where the file comes from
        sys.path.insert(0, str(ROOT))
        try:
            from tests.courses.regression import write_npz
        finally:
            sys.path.remove(str(ROOT))
        write_npz(tmp_path / "own.npz")
        command = command.replace("own.npz", str(tmp_path / "own.npz"))
    command = re.sub(r"--report \S+", f"--report {tmp_path / 'report'}", command)
    command = command.replace("python -m", f"{sys.executable} -m", 1)
    run = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    got = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith(VERDICT)]
    assert got, run.stderr
    assert without_time(got[-1]) == without_time(verdict)
