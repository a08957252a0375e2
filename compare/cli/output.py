"""What every command writes: JSON without NaN (as strings), folders made on the way."""
import json
import math
from pathlib import Path

import numpy as np


def jsonable(obj):
    """NaN and infinity become strings (JSON has neither); tuples become lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        obj = float(obj)
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


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
