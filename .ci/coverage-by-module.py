"""Line coverage per module of src/ from cargo-tarpaulin's JSON report.

A module is a top-level folder of src/ (or a top-level file, counted under its own
name); the lines are tarpaulin's coverable lines. Prints a table, the whole, and the
modules under 90 %.
"""
import json
import sys
from collections import defaultdict

report = json.load(open(sys.argv[1]))
covered = defaultdict(int)
coverable = defaultdict(int)
for f in report["files"]:
    parts = f["path"]
    if "src" not in parts:
        continue
    rest = parts[parts.index("src") + 1:]
    module = rest[0] if len(rest) > 1 else rest[0].removesuffix(".rs")
    covered[module] += f["covered"]
    coverable[module] += f["coverable"]

total_cov, total_all = sum(covered.values()), sum(coverable.values())
print(f"{'module':<12} {'lines':>7} {'covered':>8} {'coverage':>9}")
for module in sorted(coverable, key=lambda m: covered[m] / max(coverable[m], 1)):
    share = covered[module] / coverable[module] * 100 if coverable[module] else 100.0
    print(f"{module:<12} {coverable[module]:>7} {covered[module]:>8} {share:>8.1f}%")
print(f"{'all':<12} {total_all:>7} {total_cov:>8} {total_cov / max(total_all, 1) * 100:>8.1f}%")
low = [m for m in coverable if coverable[m] and covered[m] / coverable[m] < 0.9]
print("under 90 %: " + (", ".join(sorted(low)) if low else "none"))
