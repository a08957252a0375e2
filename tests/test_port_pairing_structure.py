"""Parameters paired by what each forward pass computes with them, never by the order a dict
lists them in: shuffled dicts in every style pair as the truth says, shapes that repeat pair
by their use, and what cannot be told apart is refused with the names and a ``--param-map``.
The features-first layout is read off every weight and its bias, in any order."""
import itertools
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import check_port  # noqa: E402
from compare.port.check.state import pair_sides  # noqa: E402
from compare.port.pairing import pair_by_use  # noqa: E402
from compare.port.reference import NumpySide  # noqa: E402
from compare.port.reference.shapes import detect_layout  # noqa: E402
from compare.port.targets import PortSetupError  # noqa: E402
from compare.port.torch_side import TorchSide  # noqa: E402
from generated.build import build_case  # noqa: E402
from generated.spec import Spec  # noqa: E402
from styles import repeated_shapes as rs  # noqa: E402


def twins(np_model, port, x, t, **np_options):
    np_side = NumpySide(np_model, np.float64, **np_options)
    t_side = TorchSide(port, "float64")
    return {p.numpy: p.torch for p in pair_sides(np_side, t_side, x, t=t)}


# --- repeated shapes, any dict order -------------------------------------------------------------

@settings(max_examples=12, derandomize=True, deadline=None)
@given(order=st.permutations(rs.NAMES))
def test_any_dict_order_pairs_as_the_truth_says(order):
    x, t = rs.batch()
    assert twins(rs.RepeatedShapesNet(order), rs.Port(), x, t) == rs.TWINS
    assert twins(rs.RepeatedShapesNet(order), rs.FunctionalPort(), x, t) == rs.FUNCTIONAL_TWINS


def test_a_shuffled_dict_with_repeated_shapes_passes_its_right_ports():
    x, t = rs.batch()
    order = list(rs.NAMES)
    random.Random(3).shuffle(order)
    for port, truth in ((rs.Port(), rs.TWINS), (rs.FunctionalPort(), rs.FUNCTIONAL_TWINS)):
        report = check_port(rs.RepeatedShapesNet(order), port, x, t)
        assert report.passed, report.to_text()
        assert {p.numpy: p.torch for p in report.pairing} == truth


def test_what_cannot_be_followed_is_refused_with_the_names_and_a_param_map():
    x, t = rs.batch()
    net = rs.RepeatedShapesNet(rs.NAMES[::-1], cast=True)  # its arrays read through np.asarray
    with pytest.raises(PortSetupError) as refused:
        check_port(net, rs.Port(), x, t)
    text = str(refused.value)
    assert "ambiguous" in text and "--param-map" in text
    assert "NumPy W3, W2 against torch fc2.weight, fc3.weight" in text
    assert all(name in text for name in ("gamma1", "beta2", "ln1.weight", "fc3.bias"))
    # said so, the same model is checked and passes
    said = {k: v + (".T" if k.startswith("W") else "") for k, v in rs.TWINS.items()}
    report = check_port(net, rs.Port(), x, t, param_map=said)
    assert report.passed, report.to_text()


def test_roles_and_order_of_use_that_disagree_are_refused_not_guessed():
    np_shapes = {"b1": (4,), "gamma1": (4,)}
    t_shapes = {"scale": (4,), "shift": (4,)}
    np_uses = [("b1", "shift"), ("gamma1", "scale")]
    agreeing = [("shift", "shift"), ("scale", "scale")]
    pairs = pair_by_use(np_shapes, t_shapes, np_uses, agreeing)
    assert {p.numpy: p.torch for p in pairs} == {"b1": "shift", "gamma1": "scale"}
    # the roles say b1 <-> shift, the order of use b1 <-> scale
    with pytest.raises(PortSetupError, match="ambiguous.*NumPy b1, gamma1 against torch"):
        pair_by_use(np_shapes, t_shapes, np_uses, agreeing[::-1])


# --- the generated styles, every array the same size ---------------------------------------------

STYLE_TWINS = {"W1": "fc1.weight", "b1": "fc1.bias", "W2": "fc2.weight", "b2": "fc2.bias",
               "gamma1": "bn1.weight", "beta1": "bn1.bias"}


@pytest.mark.parametrize("style,bn,bias", [
    ("book", "flat", "flat"), ("book", "flat", "col"), ("cs231n", "flat", "row"),
    ("dlai", None, "col"), ("adapter", None, "row"), ("plain", None, "flat")])
def test_every_style_pairs_shuffled_dicts_of_equal_shapes_by_use(style, bn, bias):
    rng = random.Random(7)
    base = Spec(style, D=4, H=4, C=4, N=9, bn=bn, bias=bias)
    for _ in range(4):
        order = list(base.param_names)
        rng.shuffle(order)
        case = build_case(replace(base, order=tuple(order)))
        layout = case.options.get("numpy_layout")
        got = twins(case.numpy_model, case.port, case.x, case.t, numpy_layout=layout)
        assert got == {k: STYLE_TWINS[k] for k in order}, order


@pytest.mark.parametrize("style,bn", [("book", "flat"), ("dlai", None), ("plain", None)])
def test_a_shuffled_style_model_with_equal_shapes_passes(style, bn):
    spec = Spec(style, D=4, H=4, C=4, N=9, bn=bn, bias="col" if style == "dlai" else "flat")
    order = list(reversed(spec.param_names))
    case = build_case(replace(spec, order=tuple(order)))
    report = check_port(case.numpy_model, case.port, case.x, case.t, **case.options)
    assert report.passed, report.to_text()


# --- the layout, whatever the order --------------------------------------------------------------

def test_features_first_is_detected_in_every_dict_order():
    course = {"W1": np.zeros((6, 3)), "b1": np.zeros((6, 1)), "W2": np.zeros((4, 6)),
              "b2": np.zeros((4, 1))}
    book = {"W1": np.zeros((3, 6)), "b1": np.zeros(6), "W2": np.zeros((6, 4)), "b2": np.zeros(4)}
    binary = {"W1": np.zeros((7, 3)), "b1": np.zeros((7, 1)), "W2": np.zeros((1, 7)),
              "b2": np.zeros((1, 1))}
    for params, layout in ((course, "features-first"), (binary, "features-first"),
                           (book, "batch-first")):
        for order in itertools.permutations(params):
            assert detect_layout({k: params[k] for k in order}) == layout, order


def test_a_features_first_dict_in_another_order_is_checked_transposed():
    spec = Spec("dlai", D=3, H=6, C=4, N=16, seed=693, bias="col", head="probs",
                order=("W2", "b1", "W1", "b2"))
    case = build_case(spec)
    report = check_port(case.numpy_model, case.port, case.x, case.t, **case.options)
    assert report.passed, report.to_text()


@pytest.mark.slow
def test_the_command_line_refuses_what_cannot_be_paired_in_one_line_with_exit_2(tmp_path):
    import subprocess
    x, t = rs.batch()
    np.savez(tmp_path / "data.npz", x=x, t=t)
    style = str(Path(__file__).resolve().parent / "styles" / "repeated_shapes.py")
    done = subprocess.run([sys.executable, "-m", "compare", "port", f"{style}:make_cast_net",
                           f"{style}:make_port", "--data", str(tmp_path / "data.npz"),
                           "--batch", str(len(x)), "--no-progress"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "--param-map" in done.stderr
    assert "ambiguous" in done.stderr and "Traceback" not in done.stderr
