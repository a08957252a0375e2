"""Generated models in the styles learners write, with their torch ports (issue 20,
"Make it a property").

``tests/generated`` writes a NumPy model and its port from one set of choices: a
style (the book's layers, cs231n's layer functions, features first, layer objects
behind an adapter, no layers at all) and the conventions right code differs in.

* the generator's own check: each NumPy backprop against central differences of its
  own loss, each port against its NumPy model with the weights copied by hand;
* property 1: every right port passes;
* property 2: every bug of the catalogue fails, in its phase, at its place, with its
  code.

Each property is parametrised by style (and by the convention group drawn, or the
bug), so a failure names where it lives:
``pytest tests/test_generated_ports.py -k "right and cs231n and order"``,
``-k "bug_is_caught and double_softmax"``. The quick runs are small and derandomised;
the ``slow`` ones draw more of each, every group of conventions apart. A longer run
with a table of style by convention and every failure named:
``PYTHONPATH=$PWD python benchmarks/generated_ports.py --right 20 --bugs 10``.
"""
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import check_port  # noqa: E402
from generated import selftest  # noqa: E402
from generated.bugs import bug_specs, caught, styles_for  # noqa: E402
from generated.build import build_case, numpy_bug  # noqa: E402
from generated.ports import BUGS  # noqa: E402
from generated.spec import STYLES, focus_specs, focuses, specs  # noqa: E402


def examples(n):
    # no shrinking: a failing example is reported as drawn (its spec says every choice),
    # and a failing run costs no more than a passing one
    return settings(max_examples=n, derandomize=True, deadline=None, database=None,
                    phases=(Phase.explicit, Phase.generate), report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck))


def run_check(case):
    return check_port(case.numpy_model, case.port, case.x, case.t, **case.options)


# --- the generator against independent truth --------------------------------------------------

# central differences with h = 1e-6 in float64 leave ~1e-9 relative, and more only
# where a ReLU's input lies within h of its kink
GRADIENT_RTOL = 1e-4
PORT_RTOL = 1e-12  # the same float64 arithmetic in another order
FLOAT32_RTOL = 1e-4


def assert_generator_right(spec):
    errors = selftest.gradient_errors(spec)
    assert max(errors.values()) < GRADIENT_RTOL, (spec.describe(), errors)
    for what, (err, scale) in selftest.port_errors(spec).items():
        assert err <= PORT_RTOL * max(scale, 1.0), (spec.describe(), what, err, scale)
    assert selftest.float32_gap(spec) < FLOAT32_RTOL, spec.describe()


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@examples(3)
@given(data=st.data())
def test_generator_self_check(style, data):
    assert_generator_right(data.draw(specs(style)))


@pytest.mark.parametrize("style", STYLES)
@examples(2)
@given(data=st.data())
def test_generated_numpy_bug_is_a_real_one(style, data):
    """The wrong backward the catalogue plants does disagree with the model's own loss."""
    spec = data.draw(specs(style, reduction="mean"))
    spec = replace(spec, np_bug=numpy_bug(spec))
    assert max(selftest.gradient_errors(spec).values()) > 1e-2, spec.describe()


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@examples(60)
@given(data=st.data())
def test_generator_self_check_many(style, data):
    assert_generator_right(data.draw(specs(style)))


# --- property 1: a right port passes ------------------------------------------------------------

def assert_passes(spec):
    case = build_case(spec)
    report = run_check(case)
    assert report.passed, f"{case.describe()}\n{report.to_text()}"


@pytest.mark.parametrize("style", STYLES)
@examples(3)
@given(data=st.data())
def test_right_port_passes_quick(style, data):
    assert_passes(data.draw(specs(style)))


@pytest.mark.slow
@pytest.mark.parametrize("style,focus", [(s, f) for s in STYLES for f in focuses(s)])
def test_right_port_passes(style, focus):
    @examples(8)
    @given(spec=focus_specs(style, focus))
    def prop(spec):
        assert_passes(spec)
    prop()


# --- property 2: a wrong port fails, at its place, with its code -----------------------------

def assert_caught(spec, bug):
    case = build_case(spec, bug)
    report = run_check(case)
    ok, reason = caught(report, bug, spec.style)
    assert ok, f"{reason}: {case.describe()}\n{report.to_text()}"


CATALOGUE = [(bug, style) for bug in BUGS for style in styles_for(bug)]
# the quick run: each bug once, in one style, the styles taken in turn
QUICK = [(bug, styles_for(bug)[i % len(styles_for(bug))]) for i, bug in enumerate(BUGS)]


@pytest.mark.parametrize("bug,style", QUICK)
@examples(1)
@given(data=st.data())
def test_bug_is_caught_quick(bug, style, data):
    assert_caught(data.draw(bug_specs(bug, style)), bug)


@pytest.mark.slow
@pytest.mark.parametrize("habits", [True, False], ids=["habits", "all_drawn"])
@pytest.mark.parametrize("bug,style", CATALOGUE)
def test_bug_is_caught(bug, style, habits):
    @examples(5)
    @given(spec=bug_specs(bug, style, habits))
    def prop(spec):
        assert_caught(spec, bug)
    prop()
