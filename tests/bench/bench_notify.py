"""Notifications through the PostgreSQL outbox and the real CloudEvents webhook channel, to a receiver on
loopback (tests/support/receivers.py), with a PostgreSQL of its own (tests/support/servers.py).

    python tests/bench/bench_notify.py [--notices 1000] [--workers 2] [--rate 50] [--fail-ratio 0.3]

Printed:
  throughput   `--notices` enqueued first, then `--workers` workers (each with its own pool, as separate
               operator processes) drain them to a healthy receiver: notices/s
  latency      `--notices` enqueued at `--rate` a second (open loop) while one worker runs: enqueue to the
               receiver's acceptance, p50/p95/p99
  lossless     `--notices` notices through `--workers` workers to a receiver refusing `--fail-ratio` of the
               requests (half 500, half 429 with Retry-After: 1): lost (never accepted) and duplicated
               (accepted twice) must both be 0

The workers use short backoffs (50 ms to 1 s) and 20 attempts, as the integration test does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from aiops.notify import outbox

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "integration")]

from test_notify_outbox import (  # noqa: E402
    TimedReceiver,
    latency,
    lossless,
    notice,
    percentile,
    settled,
    webhook,
    workers,
)

from support.servers import PostgresServer  # noqa: E402


async def throughput(dsn: str, notices: int, count: int) -> float:
    with TimedReceiver() as receiver:
        pool = await outbox.open_pool(dsn)
        try:
            for i in range(notices):
                await outbox.enqueue(pool, notice(i), ["sink"])
            started = time.monotonic()
            async with workers(dsn, lambda: [webhook("sink", receiver.url)], count):
                await settled(pool, timeout=600)
                elapsed = time.monotonic() - started
        finally:
            await pool.close()
    assert len(receiver.events) == notices
    return notices / elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--notices", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rate", type=float, default=50.0, help="notices/s offered in the latency run")
    p.add_argument("--fail-ratio", type=float, default=0.3)
    args = p.parse_args()

    server = PostgresServer().start()
    try:
        rate = asyncio.run(throughput(server.database(), args.notices, args.workers))
        print(f"throughput: {args.notices} notices, {args.workers} worker(s): {rate:.0f} notices/s")

        seconds = asyncio.run(latency(server.database(), args.notices, args.rate))
        ms = [percentile(seconds, p) * 1000 for p in (50, 95, 99)]
        print(
            f"latency: enqueue -> accepted at {args.rate:g} notices/s: "
            f"p50 {ms[0]:.1f} ms, p95 {ms[1]:.1f} ms, p99 {ms[2]:.1f} ms"
        )

        figures = asyncio.run(lossless(server.database(), args.notices, args.fail_ratio, args.workers))
        print(
            f"lossless: {args.notices} notices, receiver refusing {args.fail_ratio:.0%} "
            f"({figures['refused'][500]} x 500, {figures['refused'][429]} x 429): lost {figures['lost']}, "
            f"duplicated {figures['duplicated']}, dead {figures['dead']}, {figures['attempts']} sends "
            f"in {figures['seconds']:.1f} s"
        )
        return 0 if figures["lost"] == figures["duplicated"] == 0 else 1
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
