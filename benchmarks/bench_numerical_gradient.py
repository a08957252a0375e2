"""Run compare.ch4.benchmark.bench_numerical_gradient and print its table (see BENCHMARKS.md).

Exit status: 0 when it finished, 2 when it cannot run (one line on stderr)."""
from pathlib import Path

from compare.ch4 import benchmark
from compare.cli import runner

NAME = Path(__file__).name


def parse_args(argv=None):
    parser = runner.parser(NAME, __doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-repeats", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def work(data):
        result = benchmark.bench_numerical_gradient(data, repeats=args.repeats,
                                                    loop_repeats=args.loop_repeats,
                                                    device=args.device)
        print(benchmark.to_markdown(result))
        print("machine:", benchmark.machine_info(args.device))
        print("saved", benchmark.save(result, args.out, args.device))

    return runner.run(NAME, args, work,
                      counts=("repeats", "loop_repeats"))


if __name__ == "__main__":
    raise SystemExit(main())
