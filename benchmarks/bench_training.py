"""Run compare.ch4.benchmark.bench_training and print its table (see BENCHMARKS.md).

Exit status: 0 when it finished, 2 when it cannot run (one line on stderr)."""
from pathlib import Path

from compare.ch4 import benchmark
from compare.cli import runner

NAME = Path(__file__).name


def parse_args(argv=None):
    parser = runner.parser(NAME, __doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds, medians reported")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def work(data):
        result = benchmark.bench_training(data, iters=args.iters, device=args.device,
                                          rounds=args.rounds)
        print(benchmark.to_markdown(result))
        print("machine:", benchmark.machine_info(args.device))
        print("saved", benchmark.save(result, args.out, args.device))

    return runner.run(NAME, args, work, counts=("iters", "rounds"))


if __name__ == "__main__":
    raise SystemExit(main())
