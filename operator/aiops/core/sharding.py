"""Sharding: which controller shard handles an object, decided by a label the API server selects on.

Every object of ours carries `aiops.dev/shard: "<bucket>"`, the bucket a stable hash (CRC-32) of the
cluster the object is about, mod BUCKETS: an Incident's or AnalysisRun's spec.clusterRef.name, or its
namespace when it is about the local cluster; a ManagedCluster's name; an SOP's namespace. So an
Incident, its run and its ManagedCluster land on one shard. Shard i of N watches the buckets b with
b % N == i through a label selector on its watches: labels never change when N does.

Objects created without the label (kubectl apply) or with a value no shard selects are stamped by
shard 0's Labeller, which watches only those and writes only the label; the stamped object then
enters its shard's watch as a new one.
"""

from __future__ import annotations

import logging
import threading
import zlib
from dataclasses import dataclass
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from aiops import GROUP, VERSION
from aiops.api import ANALYSIS_RUN, INCIDENT, KINDS, MANAGED_CLUSTER, SOP, Kind
from aiops.core import kube

log = logging.getLogger(__name__)
SHARD_LABEL = f"{GROUP}/shard"
BUCKETS = 64  # the most shards there can be; a label's value is one of these
WATCH_TIMEOUT_S = 300


@dataclass(frozen=True)
class Shard:
    """This controller's share: shard `index` of `count` (AIOPS_SHARD=i/N); 0/1 handles everything."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, sep, count = text.partition("/")
        if not (sep and index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count) <= BUCKETS:
            raise ValueError(f"expected i/N with 0 <= i < N <= {BUCKETS}, e.g. 0/2")
        return cls(int(index), int(count))

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def primary(self) -> bool:
        """Shard 0 stamps the unlabelled objects and runs the fleet-wide passes (one of each per fleet)."""
        return self.index == 0

    def buckets(self) -> list[int]:
        return list(range(self.index, BUCKETS, self.count))

    def selector(self) -> str | None:
        """The label selector of this shard's watches; None when there is one shard (it watches everything)."""
        if not self.sharded:
            return None
        return f"{SHARD_LABEL} in ({','.join(map(str, self.buckets()))})"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


# A label value outside these matches the Labeller's selector, as does a missing label (`notin` semantics).
UNSHARDED = f"{SHARD_LABEL} notin ({','.join(map(str, range(BUCKETS)))})"


def shard_key(kind: Kind, obj: dict[str, Any]) -> str:
    """What an object is sharded by: the cluster it is about (a ManagedCluster's name, or a namespace)."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    if kind is MANAGED_CLUSTER:
        return meta["name"]
    if kind in (INCIDENT, ANALYSIS_RUN):
        cluster = (spec.get("clusterRef") or {}).get("name")
        return cluster or meta.get("namespace") or ""
    if kind is SOP:
        return meta.get("namespace") or ""
    raise ValueError(f"{kind.kind} is not sharded")


def bucket(key: str) -> int:
    """A stable hash: the same on every process and Python version (unlike hash(), which is salted)."""
    return zlib.crc32(key.encode()) % BUCKETS


def shard_labels(kind: Kind, obj: dict[str, Any]) -> dict[str, str]:
    """The shard label for the object: the one it carries when valid, else computed from its shard key."""
    current = ((obj.get("metadata") or {}).get("labels") or {}).get(SHARD_LABEL)
    if current is not None and current.isdigit() and int(current) < BUCKETS:
        return {SHARD_LABEL: current}
    return {SHARD_LABEL: str(bucket(shard_key(kind, obj)))}


class Labeller:
    """Stamps the shard label on our objects that lack it: one watch thread per kind, label writes only."""

    def __init__(self, client: kube.Client | None = None):
        self.client = client or kube.API
        self.stamped = 0

    def stamp(self, kind: Kind, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        labels = {SHARD_LABEL: str(bucket(shard_key(kind, obj)))}  # an invalid value is replaced too
        try:
            self.client.patch(kind, meta["name"], meta.get("namespace"), {"metadata": {"labels": labels}})
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to label
                raise
            return
        self.stamped += 1
        where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        log.info("%s %s: labelled %s", kind.kind, where, labels)

    def watch(self, kind: Kind) -> None:
        """Forever: the unlabelled objects of a kind, existing ones first, each stamped once seen."""
        while True:
            try:
                stream = watch.Watch().stream(
                    kube.custom().list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    kind.plural,
                    label_selector=UNSHARDED,
                    timeout_seconds=WATCH_TIMEOUT_S,
                )
                for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.stamp(kind, event["object"])
            except Exception as exc:  # noqa: BLE001  (an API hiccup must not end labelling for good)
                log.warning("labelling %s: %s; watching again in 5s", kind.plural, exc)
                threading.Event().wait(5)

    def start(self) -> None:
        for kind in KINDS:
            threading.Thread(target=self.watch, args=(kind,), name=f"aiops-labeller-{kind.plural}", daemon=True).start()
        log.info("shard 0 labels unlabelled objects (%s)", ", ".join(k.plural for k in KINDS))
