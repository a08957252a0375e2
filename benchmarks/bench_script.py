"""Run compare.ch4.benchmark.bench_script (or, with --loader, bench_loader) and
print its table (see BENCHMARKS.md).

Exit status: 0 when it finished, 2 when it cannot run (one line on stderr)."""
from pathlib import Path

from compare.ch4 import benchmark
from compare.cli import runner

NAME = Path(__file__).name


def parse_args(argv=None):
    parser = runner.parser(NAME, __doc__.split("\n\n")[0], device=False)
    parser.add_argument("--iters", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scripts", nargs="+", default=["book", "numpy"],
                        choices=list(benchmark.SCRIPTS), help="the first one is the reference")
    parser.add_argument("--loader", action="store_true",
                        help="time loading MNIST alone: first and later loads against the book's")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def work(data):  # whole processes: each loads MNIST itself
        if args.loader:
            result = benchmark.bench_loader(rounds=args.rounds)
        else:
            result = benchmark.bench_script(iters=args.iters, rounds=args.rounds, seed=args.seed,
                                            scripts=tuple(args.scripts))
        print(benchmark.to_markdown(result))
        print("machine:", benchmark.machine_info())
        print("saved", benchmark.save(result, args.out))

    return runner.run(NAME, args, work, counts=("iters", "rounds"), seeds=("seed",))


if __name__ == "__main__":
    raise SystemExit(main())
