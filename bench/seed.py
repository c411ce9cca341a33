"""Writes a deterministic tree of files for haul's benchmarks.

usage: python3 seed.py DIR --files N --size BYTES [--folders F] [--hangul PERCENT]
                            [--extensions csv,parquet,...]

File i goes to folder i % F as `f{i:07}.{ext}` (or a Hangul name for PERCENT of them), with
extensions taken in turn; contents are derived from i, so two runs write identical trees.
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
args = parser.parse_args()

extensions = args.extensions.split(",")
syllables = "가나다라마바사아자차카타파하매출고객보고서월간분기"
CHUNK = 1024 * 1024
block = random.Random(42).randbytes(min(max(args.size, 1), CHUNK) + 64)
for folder in range(args.folders):
    os.makedirs(os.path.join(args.dir, f"d{folder:03}"), exist_ok=True)
for i in range(args.files):
    extension = extensions[i % len(extensions)]
    if args.hangul and i % 100 < args.hangul:
        name = "".join(syllables[(i >> (3 * k)) % len(syllables)] for k in range(4)) + f" {i}.{extension}"
    else:
        name = f"f{i:07}.{extension}"
    path = os.path.join(args.dir, f"d{i % args.folders:03}", name)
    with open(path, "wb") as f:
        # Large files: 1 MiB chunks of the block at shifting offsets (no two chunks alike).
        for chunk, start in enumerate(range(0, args.size, CHUNK)):
            offset = (i + chunk) % 64
            f.write(block[offset:offset + min(CHUNK, args.size - start)])
