"""Writes a deterministic tree of files for haul's benchmarks.

usage: python3 seed.py DIR --files N --size BYTES [--folders F] [--hangul PERCENT]
                            [--extensions csv,parquet,...] [--lognormal SIGMA --depth D]

File i goes to folder i % F as `f{i:07}.{ext}` (or a Hangul name for PERCENT of them), with
extensions taken in turn; contents are derived from i, so two runs write identical trees.
With --lognormal, sizes follow a log-normal spread around the median --size (sigma SIGMA),
kept between 100 B and 200 MiB, drawn from a fixed seed; with --depth, folders nest D levels.
"""
import argparse
import os
import random

parser = argparse.ArgumentParser()
parser.add_argument("dir")
parser.add_argument("--files", type=int, required=True)
parser.add_argument("--size", type=int, required=True)
parser.add_argument("--folders", type=int, default=100)
parser.add_argument("--hangul", type=int, default=0, help="percent of files with Hangul names")
parser.add_argument("--extensions", default="csv")
parser.add_argument("--lognormal", type=float, default=0.0, help="sigma of log-normal sizes around --size")
parser.add_argument("--depth", type=int, default=1, help="folder levels")
args = parser.parse_args()

sizes = random.Random(7)


def size_of(i):
    if not args.lognormal:
        return args.size
    import math
    drawn = int(sizes.lognormvariate(math.log(args.size), args.lognormal))
    return max(100, min(drawn, 200 * 1024 * 1024))


def folder_of(i):
    if args.depth <= 1:
        return f"d{i % args.folders:03}"
    parts, n = [], i
    for _ in range(args.depth):
        parts.append(f"d{n % args.folders:02}")
        n //= args.folders
    return os.path.join(*parts)

extensions = args.extensions.split(",")
syllables = "가나다라마바사아자차카타파하매출고객보고서월간분기"
CHUNK = 1024 * 1024
block = random.Random(42).randbytes((CHUNK if args.lognormal else min(max(args.size, 1), CHUNK)) + 64)
for i in range(args.files):
    size = size_of(i)
    extension = extensions[i % len(extensions)]
    if args.hangul and i % 100 < args.hangul:
        name = "".join(syllables[(i >> (3 * k)) % len(syllables)] for k in range(4)) + f" {i}.{extension}"
    else:
        name = f"f{i:07}.{extension}"
    folder = os.path.join(args.dir, folder_of(i))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        # Large files: 1 MiB chunks of the block at shifting offsets (no two chunks alike).
        for chunk, start in enumerate(range(0, size, CHUNK)):
            offset = (i + chunk) % 64
            f.write(block[offset:offset + min(CHUNK, size - start)])
