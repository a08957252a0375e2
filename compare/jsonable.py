"""JSON without NaN: what every report's ``to_dict`` and every command's ``--json`` write."""
import math

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
