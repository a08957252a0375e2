"""What every command writes: JSON without NaN (as strings), folders made on the way."""
import json
from pathlib import Path

from ..jsonable import jsonable


def write_json(path, obj):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=1, allow_nan=False))
    return path


def print_report(text, verdict):
    """A report's text without its closing verdict line: ``compare.cli.main`` prints the
    verdict once, as the last line, with the time."""
    lines = text.splitlines()
    if lines and lines[-1] == verdict:
        lines.pop()
    print("\n".join(lines))
