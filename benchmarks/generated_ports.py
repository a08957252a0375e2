"""Generated NumPy models and their torch ports through ``check_port``: many examples per
style and convention group (right ports must pass) and per bug and style (each must
fail in its phase, at its place, with its code). Prints the two tables and every
failure with its spec, what the checker said, and the issue-20 item it belongs to.

    PYTHONPATH=$PWD python benchmarks/generated_ports.py --right 20 --bugs 10

Exit status: 0 when every right port passed and every bug was caught where it is, 1
when any was not (each listed), 2 when it cannot run.
"""
import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="generated_ports.py", description=__doc__.split("\n")[0])
    parser.add_argument("--right", type=int, default=20, help="examples per style and convention group")
    parser.add_argument("--bugs", type=int, default=10, help="examples per bug and style")
    parser.add_argument("--styles", default=None, help="comma-separated styles (default: all)")
    parser.add_argument("--no-attribute", action="store_true", help="skip putting conventions back")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        from generated import survey
        from generated.bugs import styles_for
        from generated.ports import BUGS
        from generated.spec import FOCUS, STYLES, focus_specs, focuses
    except ImportError as exc:
        print(f"generated_ports.py: cannot import the generator: {exc}", file=sys.stderr)
        return 2
    styles = args.styles.split(",") if args.styles else list(STYLES)
    failures = []
    start = time.perf_counter()

    print(f"## Right ports: passed / drawn ({args.right} per cell)\n")
    groups = list(FOCUS)
    print("| style | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for style in styles:
        cells = []
        for focus in groups:
            if focus not in focuses(style):
                cells.append("")
                continue
            outs = survey.run(focus_specs(style, focus), args.right, explain=not args.no_attribute)
            failures += [(f"{style}/{focus}", o) for o in outs if not o.ok]
            cells.append(f"{sum(o.ok for o in outs)}/{len(outs)}")
        print(f"| {style} | " + " | ".join(cells) + " |", flush=True)

    print(f"\n## Bugs: caught where they are / drawn ({args.bugs} per cell, the style's habits"
          " besides what the bug needs; then every convention drawn; a float32 gap: a bug whose"
          " difference float32's tolerance holds, caught in float64; a partial penalty: weight decay"
          " over W1 and W2 but not W_res, failed at the loss, not named)\n")
    print("| bug | " + " | ".join(styles) + " |")
    print("|---|" + "---|" * len(styles))
    for bug in BUGS:
        cells = []
        for style in styles:
            if style not in styles_for(bug):
                cells.append("")
                continue
            a = survey.bug_run(bug, style, args.bugs, True, not args.no_attribute)
            b = survey.bug_run(bug, style, args.bugs, False, not args.no_attribute)
            failures += [(f"{bug}/{style}", o) for o in a + b if not o.ok]
            cell = f"{sum(o.ok for o in a)}/{len(a)}, {sum(o.ok for o in b)}/{len(b)}"
            gaps = [f"{n} {what}" for what, item in (("float32 gap", survey.FLOAT32_GAP),
                                                     ("partial penalty", survey.PARTIAL_PENALTY))
                    if (n := sum(o.item == item for o in a + b))]
            cells.append(f"{cell} ({', '.join(gaps)})" if gaps else cell)
        print(f"| {bug} | " + " | ".join(cells) + " |", flush=True)

    print(f"\n## Failures by issue-20 item ({len(failures)})\n")
    for item, count in sorted(Counter(o.item or "?" for _, o in failures).items()):
        print(f"- {item}: {count}")
    print()
    for where, o in failures:
        print(f"- [{o.item or '?'}] {where}: {o.spec.describe()}{' bug=' + o.bug if o.bug else ''}"
              f" -> {o.said}; culprits: {', '.join(o.culprits) or 'none alone'}")
    print(f"\ntime: {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
