"""PathMMU conversion time at the paper's size: 5,385 synthetic items (+ test_tiny repeats) -> 3000/1000/1385.

Generates the synthetic source once, then times ``convert_pathmmu`` (read, dedup, hash images, split, write
every format) and ``check_output``; the last line printed is ``conversion: <seconds> s``.
Usage: ``python benchmarks/bench_data.py [--items 5385] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tools.data.check import check_output  # noqa: E402
from tools.data.pathmmu import convert_pathmmu  # noqa: E402
from tools.dev.synth import write_synthetic_pathmmu  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=5385, help="unique synthetic items (default: 5385)")
    parser.add_argument("--repeat", type=int, default=3, help="conversions to time; the best is reported")
    args = parser.parse_args()
    sizes = (3000, 1000) if args.items > 4000 else (args.items // 2, args.items // 5)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = write_synthetic_pathmmu(Path(tmp) / "src", args.items)
        print(f"synthetic source: {args.items} items in {time.perf_counter() - start:.2f} s")
        times = []
        for run in range(args.repeat):
            out = Path(tmp) / f"out{run}"
            start = time.perf_counter()
            with redirect_stderr(StringIO()):  # progress bar and counts
                manifest = convert_pathmmu(root, out, sizes=sizes)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        problems = check_output(out)
        checked = time.perf_counter() - start
    stats = manifest["stats"]
    print(f"read {stats['read']}, duplicates {stats['duplicates']}, kept {stats['kept']}")
    print(f"split: {manifest['counts']}")
    print(f"check: {checked:.2f} s, {len(problems)} problem(s)")
    print(f"conversion runs: {', '.join(f'{t:.2f}' for t in times)} s")
    print(f"conversion: {min(times):.2f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
