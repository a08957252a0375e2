"""The reports in a notebook: ``_repr_html_`` (verdict, first mismatch and diagnosis on top,
failing rows marked, every text escaped), a one-line ``repr``, ``check_port`` without ``x, t``
on the command's default batch, and the note when the port's parameters were cast."""
import base64
import json
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import port_zoo as zoo
from compare import PortSetupError, check_port, cli, load_mnist
from compare.port import check_training, check_twins
from compare.port.data import make_dataset
from compare.port.report import PHASES, Check, PortReport
from compare.port.twins import TwinRow, TwinsReport
from numpy_impl.random_stream import BookRandomStream

ROOT = Path(__file__).resolve().parents[1]
NUMPY = "examples/layer_net/numpy_net.py:make_net"
TORCH = "examples/layer_net/torch_net.py:make_net"


class Page(HTMLParser):
    """The tags, the rows (their class and cells' text) and the text of an HTML fragment."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.rows, self.text, self._cell = [], [], [], None
        self.feed(text)
        self.close()

    BLOCKS = {"div", "li", "ul", "td", "th", "tr", "table", "details", "summary", "img"}

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in self.BLOCKS:
            self.text.append(" ")
        if tag == "tr":
            self.rows.append({"class": dict(attrs).get("class") or "", "style": dict(attrs).get("style") or "",
                              "cells": []})
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in self.BLOCKS:
            self.text.append(" ")
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def random_batch():
    x, t = make_dataset(zoo.book_net().params, data="random")
    return x[:100], t[:100]


@pytest.fixture(scope="module")
def failing(random_batch):
    """The port that sums where the NumPy side takes the mean (planted in ``port_zoo``)."""
    return check_port(zoo.book_net(), zoo.no_batch_divide(), *random_batch)


def words(page):
    return " ".join("".join(page.text).split())


def body_rows(page):
    """The rows of the result tables (the pairing's have three cells), headers left out."""
    return [r for r in page.rows if len(r["cells"]) > 3 and r["cells"][0] not in ("NumPy", "name")]


# --- the HTML ---------------------------------------------------------------------------------

def test_the_html_leads_with_the_verdict_then_the_first_mismatch_and_its_diagnosis(failing):
    assert not failing.passed and failing.first_mismatch["where"] == "b2"
    assert [d["code"] for d in failing.diagnosis] == ["scale"]
    out = failing._repr_html_()
    page = Page(out)
    text = words(page)
    assert text.startswith("FAIL first mismatch in backward at b2")
    first = text.index("First mismatch: backward, b2 (torch b2)")
    cause = text.index("Likely cause scale actual = 100 x expected")
    assert first < cause < text.index("Parameters (copied in from NumPy)")
    assert text.index("Known differences") < text.index("Backward, nearest the loss first")
    assert "script" not in page.tags and "style" not in page.tags  # inline styles only


def test_the_failing_rows_and_only_they_are_marked(failing):
    page = Page(failing._repr_html_())
    rows = body_rows(page)
    checks = [c for phase in PHASES for c in failing.checks if c.phase == phase]
    assert len(rows) == len(checks)  # one HTML row per check, phase by phase
    for check, row in zip(checks, rows):
        assert row["cells"][:2] == [check.where, check.torch]
        assert ("port-fail" in row["class"]) == (not check.passed), check.where
        assert row["cells"][-1].startswith("ok" if check.passed else "FAIL")
        assert ("background" in row["style"]) == (not check.passed)
    first = [r for r in rows if "port-first" in r["class"]]
    assert [r["cells"][0] for r in first] == ["b2"]


def test_every_text_is_escaped():
    row = Check("forward", "<lambda>", "fc<1> & co", shape=(2,), max_abs=1.0, max_rel=1.0,
                problem="2 of 2 elements out of tolerance", note="a < b")
    report = PortReport(checks=[row], first_mismatch={"phase": "forward", "where": "<lambda>",
                                                      "torch": "fc<1> & co", "step": None,
                                                      "max_abs": 1.0, "max_rel": 1.0,
                                                      "detail": "<b>not bold</b>"},
                        diagnosis=[{"code": "sign", "text": "x < 0 <script>"}],
                        notes=["the port's <module> name"], settings={"numpy model": "<lambda>"})
    out = report._repr_html_()
    assert "<lambda>" not in out and "<script>" not in out and "<b>not bold</b>" not in out
    assert "&lt;lambda&gt;" in out and "fc&lt;1&gt; &amp; co" in out
    page = Page(out)
    assert {"lambda", "script", "module"}.isdisjoint(page.tags)
    text = "".join(page.text)
    assert "<lambda>" in text and "x < 0 <script>" in text and "<b>not bold</b>" in text
    [mismatch_row] = [r for r in page.rows if r["cells"] and r["cells"][0] == "<lambda>"]
    assert "port-fail" in mismatch_row["class"]


# --- repr -------------------------------------------------------------------------------------

def test_repr_is_one_line_with_the_verdict_and_the_first_mismatch(failing, random_batch):
    failed = sum(not c.passed for c in failing.checks)
    assert failed > 0
    assert repr(failing) == (f"<PortReport FAIL at backward b2 (scale): {len(failing.checks)} "
                             f"checks, {failed} failed>")
    right = check_port(zoo.layer_net(), zoo.sequential(), *random_batch)
    assert right.passed
    assert repr(right) == f"<PortReport PASS: {len(right.checks)} checks>"
    odd = PortReport(checks=[Check("loss", "loss", "loss")],
                     first_mismatch={"phase": "loss", "where": "two\nlines", "torch": "x"})
    assert "\n" not in repr(odd) and repr(odd).startswith("<PortReport FAIL at loss two lines")
    # the text and the JSON are as they were: the dump is gone from repr only
    assert str(failing) == failing.to_text() and "<PortReport" not in failing.to_text()
    assert "first_mismatch" in failing.to_dict() and "html" not in json.dumps(failing.to_dict())


# --- training and twins -----------------------------------------------------------------------

@pytest.mark.slow  # a few seconds: with the full suite
def test_the_training_report_shows_a_summary_and_the_curves(random_batch):
    x, t = make_dataset(zoo.layer_net().params, data="random")
    report = check_training(zoo.layer_net(), zoo.sequential().double(), x, t, steps=3,
                            first_batch_check=False)
    assert report.passed
    assert repr(report) == f"<PortReport PASS: {len(report.checks)} checks; 3 training steps>"
    out = report._repr_html_()
    text = words(Page(out))
    assert "Training side by side 3 steps, batch 100, lr 0.1, NumPy SGD vs torch SGD" in text
    assert f"NumPy {report.training['loss_numpy'][-1]:.6g}" in text
    png = out.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n")


TWIN_NUMPY = """
    import numpy as np

    def double(x):
        return 2 * x

    def cube(x):
        return x ** 3
"""

TWIN_TORCH = """
    def double(x):
        return 2 * x

    def cube(x):
        return x ** 2 * x.abs()  # the sign lost
"""


def test_the_twins_report_in_a_notebook(tmp_path):
    (tmp_path / "np_twins.py").write_text(textwrap.dedent(TWIN_NUMPY))
    (tmp_path / "t_twins.py").write_text(textwrap.dedent(TWIN_TORCH))
    report = check_twins(str(tmp_path / "np_twins.py"), str(tmp_path / "t_twins.py"))
    assert not report.passed
    assert repr(report) == "<TwinsReport FAIL: 1 pair agree, 0 not checked, 1 differ (cube)>"
    page = Page(report._repr_html_())
    marked = {r["cells"][0]: "port-fail" in r["class"] for r in body_rows(page)}
    assert marked == {"double": False, "cube": True}
    by_hand = TwinsReport(rows=[TwinRow("f", "failed", reason="x < 0 <here>")])
    assert "&lt;here&gt;" in by_hand._repr_html_() and "<here>" not in by_hand._repr_html_()


# --- check_port without x, t --------------------------------------------------------------------

class SeenNet(zoo.numpy_net.TwoLayerNet):
    """The example's NumPy net, keeping each batch its loss is handed (on the class: the
    check works on a deep copy)."""
    seen = []

    def loss(self, x, t):
        SeenNet.seen.append((x.copy(), t.copy()))
        return super().loss(x, t)


@pytest.mark.slow  # a whole process or a long run: seconds
def test_without_x_t_the_check_runs_on_the_commands_default_batch(tmp_path, monkeypatch, capsys):
    SeenNet.seen.clear()
    report = check_port(SeenNet(784, 50, 10, seed=0), zoo.functional_relu())
    assert report.passed, report.to_text()
    # the book's stream's first batch of 100 for seed 0, from MNIST's training images, one-hot
    (x_train, t_train), _ = load_mnist(download=False)
    idx = BookRandomStream(0).batch_indices(x_train.shape[0], 100)
    x, t = SeenNet.seen[0]
    np.testing.assert_array_equal(x, x_train[idx].astype(np.float64))
    np.testing.assert_array_equal(t, np.eye(10)[t_train[idx]])
    assert report.settings["batch"] == 100
    assert {k: report.settings[k] for k in ("data", "seed", "labels")} == {
        "data": "mnist", "seed": 0, "labels": "one-hot"}
    # the command on the same pair, with every default: the same rows, to the last bit
    monkeypatch.chdir(ROOT)
    api = check_port(zoo.layer_net(), zoo.functional_relu())
    assert cli.main(["port", NUMPY, TORCH, "--json", str(tmp_path / "port.json"), "--no-progress"]) == 0
    capsys.readouterr()
    command = json.loads((tmp_path / "port.json").read_text())
    assert command["settings"]["batch"] == api.settings["batch"] == 100
    assert command["checks"] == json.loads(json.dumps(api.to_dict()["checks"]))
    assert command["notes"] == api.notes and command["known"] == json.loads(json.dumps(api.known))


def test_x_without_t_is_refused(random_batch):
    with pytest.raises(PortSetupError, match="both x and t, or neither"):
        check_port(zoo.layer_net(), zoo.sequential(), random_batch[0])


# --- the port's own dtype ---------------------------------------------------------------------

def cast_notes(report):
    return [n for n in report.notes if "cast" in n]


def test_a_float32_port_against_a_float64_model_is_checked_cast_up_and_says_so(random_batch):
    port = zoo.sequential()
    assert {p.dtype for p in port.parameters()} == {zoo.torch.float32}
    report = check_port(zoo.layer_net(), port, *random_batch)
    assert report.passed and report.settings["dtype"] == "float64"
    assert cast_notes(report) == [
        'the port\'s parameters are float32; checked in float64 as the NumPy model is (cast up); '
        '--dtype float32 (dtype="float32") checks it as it runs']
    assert "note: the port's parameters are float32" in report.to_text()
    asked = check_port(zoo.layer_net(), port, *random_batch, dtype="float64")
    assert "checked in float64 as asked (cast up)" in cast_notes(asked)[0]
    x, t = make_dataset(zoo.layer_net().params, data="random")
    trained = check_training(zoo.layer_net(), port, x, t, steps=1, first_batch_check=False)
    assert len(cast_notes(trained)) == 1


def test_no_note_when_nothing_was_cast(random_batch):
    assert cast_notes(check_port(zoo.layer_net(), zoo.sequential().double(), *random_batch)) == []
    as_it_runs = check_port(zoo.layer_net(), zoo.sequential(), *random_batch, dtype="float32")
    assert as_it_runs.settings["dtype"] == "float32" and cast_notes(as_it_runs) == []
    literal = check_port(zoo.book_net(), zoo.literal(), *random_batch)  # float64 tensors
    assert cast_notes(literal) == []
