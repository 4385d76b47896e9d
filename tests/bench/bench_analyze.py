"""Benchmark: `aiops analyze` on a support bundle of 500+ objects, model off.

    python tests/bench/bench_analyze.py [--bundle PATH] [--objects 500] [--runs 5]

Without --bundle it writes a cluster-info dump of every failure scenario, copied into namespaces until it
holds --objects objects (events and pod logs besides; tests/support/bundles.py:big_dump). It prints the p50
of --runs runs of reading the bundle and diagnosing what it shows broken (at most 10 targets), in process,
with objects/s, and the p50 of the whole command (`aiops analyze BUNDLE`: Python start and imports
included). The target: the command within 5 s on 500 objects.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from aiops.bundles import analyze, reader  # noqa: E402
from aiops.settings import Settings  # noqa: E402
from support.bundles import big_dump  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, help="an existing bundle (folder or .tar.gz) instead of a generated one")
    p.add_argument("--objects", type=int, default=500)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or big_dump(Path(tmp) / "dump", args.objects)
        in_process, diagnosed = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            snap = reader.load(bundle)
            result = analyze.analyze(snap, Settings(llm=None))
            in_process.append(time.perf_counter() - started)
            diagnosed = len(result.diagnoses)
        command = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "aiops.cli", "analyze", str(bundle), "-o", "json"], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            command.append(time.perf_counter() - started)
    held = reader.summary(snap)
    p50 = statistics.median(in_process)
    print(f"bundle: {held['objects']} objects, {held['events']} events, {held['logFiles']} container logs "
          f"({held['layout']}); {diagnosed} targets diagnosed, {len(result.not_diagnosed)} more listed")  # fmt: skip
    print(f"read + triage + diagnose, in process: p50 {p50:.3f} s over {args.runs} runs "
          f"({held['objects'] / p50:,.0f} objects/s)")  # fmt: skip
    print(f"`aiops analyze BUNDLE -o json`, whole command: p50 {statistics.median(command):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
