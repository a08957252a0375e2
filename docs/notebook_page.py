"""Writes ``docs/notebook.html``: what a notebook shows for a failing and a passing port check.

    MNIST_ROOT=../shared/mnist python docs/notebook_page.py [--screenshot]

Each output is the report's own ``_repr_html_()``, run here on the command's
default batch (``check_port`` without ``x, t``). ``--screenshot`` also writes
``docs/notebook.png`` with a headless chromium, when one is installed.
"""
import html
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from compare import check_port  # noqa: E402
import port_zoo  # noqa: E402  (the ports the tests check, right and broken)

CELLS = [
    ("A port whose backward sums where the NumPy side takes the mean",
     "import port_zoo\nfrom compare import check_port\n\n"
     "check_port(port_zoo.book_net(), port_zoo.no_batch_divide())",
     lambda: check_port(port_zoo.book_net(), port_zoo.no_batch_divide())),
    ("The book's layer net and its torch port (examples/layer_net)",
     "check_port(port_zoo.layer_net(), port_zoo.functional_relu())",
     lambda: check_port(port_zoo.layer_net(), port_zoo.functional_relu())),
]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>compare port in a notebook</title></head>
<body style="margin: 24px; font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2328; background: #ffffff;">
<h1 style="font-size: 20px;">compare port in a notebook</h1>
<p>In Jupyter or VS Code, the last expression of a cell that returns a report shows it as
below (<code>PortReport._repr_html_()</code>): the verdict, the first mismatch and the likely
cause on top, then the tables phase by phase with the failing rows marked. <code>repr()</code>
is one line; <code>print(report)</code> gives the terminal's text. Without <code>x, t</code>,
<code>check_port</code> runs on the batch <code>python -m compare port</code> checks by default.
Made by <code>docs/notebook_page.py</code>.</p>
{cells}
</body></html>
"""

CELL = """<h2 style="font-size: 16px; margin-top: 28px;">{title}</h2>
<pre style="background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; font-size: 13px;">{code}</pre>
<div style="font-size: 12px; opacity: 0.7;">repr: <code>{repr}</code></div>
<div style="border-left: 3px solid #d0d7de; padding-left: 12px; margin-top: 6px;">{output}</div>
"""


def main(screenshot=False):
    cells = []
    for title, code, run in CELLS:
        report = run()
        cells.append(CELL.format(title=html.escape(title), code=html.escape(code),
                                 repr=html.escape(repr(report)), output=report._repr_html_()))
    page = ROOT / "docs" / "notebook.html"
    page.write_text(PAGE.replace("{cells}", "".join(cells)))
    print(f"wrote {page}")
    if screenshot:
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            sys.exit("no chromium to take the screenshot with")
        png = ROOT / "docs" / "notebook.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={png}", "--window-size=1300,1150", page.as_uri()],
                       check=True, capture_output=True)
        print(f"wrote {png}")


if __name__ == "__main__":
    main(screenshot="--screenshot" in sys.argv[1:])
