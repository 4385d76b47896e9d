"""Baseline for bench_reconcile.py: a kopf operator whose handler only writes one status field.

Same kopf settings as the real operator, so the ratio measures what our reconciler adds.
"""

import asyncio
from typing import Any

import kopf

from aiops.operator import configure  # noqa: F401  (registers the same startup settings)


@kopf.on.create("bench.aiops.dev", "v1", "pings")
def ping(patch: kopf.Patch, **_: Any) -> None:
    patch.setdefault("status", {})["phase"] = "Done"


if __name__ == "__main__":
    kopf.configure(verbose=False)
    asyncio.run(kopf.operator(clusterwide=True, standalone=True))
