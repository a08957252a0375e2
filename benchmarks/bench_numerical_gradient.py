"""Run compare.ch4.benchmark.bench_numerical_gradient and print its table (see BENCHMARKS.md)."""
import argparse

from compare.ch4 import benchmark

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--device", default=None, help="also time this torch device, e.g. cuda")
parser.add_argument("--out", default="out/bench", help="folder for the JSON result")
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--loop-repeats", type=int, default=1)
args = parser.parse_args()
result = benchmark.bench_numerical_gradient(**{k: v for k, v in vars(args).items() if k != "out"})
print(benchmark.to_markdown(result))
print("machine:", benchmark.machine_info(args.device))
print("saved", benchmark.save(result, args.out, args.device))
