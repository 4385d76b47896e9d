"""The failure scenarios, one folder each under scenarios/ (format: scenarios/README.md), loaded and written.

A scenario holds the Kubernetes objects a failing cluster shows (objects.yaml, status included, times
relative to the moment of writing), the Incident an on-call engineer would file (incident.yaml) and
the diagnosis a correct analysis ranks first (expected.yaml). The demo, the tests, `aiops-dev eval
scenarios` and the example Incidents of `aiops-dev argocd` all take them from here.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from aiops_dev.eval.workloads import Obj, Writer

SCENARIO_DIR = Path(__file__).with_name("scenarios")
# `now`, or `now-` and a duration in units s, m, h, d (`now-90s`, `now-3m41s`, `now-4h`): that long before writing.
RELATIVE_TIME = re.compile(r"now(?:-((?:\d+[smhd])+))?")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def resolve_times(value: Any, now: datetime) -> Any:
    """`value` with every relative time string replaced by an RFC 3339 time before `now`."""
    if isinstance(value, dict):
        return {k: resolve_times(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_times(v, now) for v in value]
    if isinstance(value, str) and (match := RELATIVE_TIME.fullmatch(value)):
        seconds = sum(int(n) * UNIT_S[unit] for n, unit in re.findall(r"(\d+)([smhd])", match[1] or ""))
        return (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


@dataclass(frozen=True)
class Case:
    name: str
    incident: Obj  # the Incident manifest, no namespace
    failure_mode: str  # what a correct diagnosis ranks first ...
    resource: str  # ... and the Kind/name that suspect names, a pattern (`*`: any characters)
    description: str
    documents: tuple[Obj, ...]  # objects.yaml as written, times unresolved

    def expects(self, failure_mode: str, resource: str) -> bool:
        """Whether a suspect with this failure mode on this resource (Kind/name) is the one expected first."""
        return failure_mode == self.failure_mode and fnmatchcase(resource, self.resource)

    @property
    def target(self) -> Obj:
        return self.incident["spec"]["target"]

    def objects(self, now: datetime | None = None) -> list[Obj]:
        """The objects to write, in order, their relative times resolved against `now` (default: this moment)."""
        now = now or datetime.now(UTC)
        return [resolve_times(doc, now) for doc in self.documents]

    def write(self, writer: Writer, now: datetime | None = None) -> list[Obj]:
        """Writes the failing cluster state into the writer's namespace; the objects as the server has them."""
        return [writer.write(obj) for obj in self.objects(now)]

    def incident_manifest(self, namespace: str | None = None, name: str | None = None) -> Obj:
        """incident.yaml, in `namespace` and renamed to `name` where given."""
        manifest = copy.deepcopy(self.incident)
        if name:
            manifest["metadata"]["name"] = name
        if namespace:
            manifest["metadata"]["namespace"] = namespace
        return manifest


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load(name: str, root: Path = SCENARIO_DIR) -> Case:
    folder = root / name
    expected = _yaml(folder / "expected.yaml")
    documents = yaml.safe_load_all((folder / "objects.yaml").read_text(encoding="utf-8"))
    return Case(
        name=name,
        incident=_yaml(folder / "incident.yaml"),
        failure_mode=expected["failureMode"],
        resource=expected["resource"],
        description=" ".join(expected["description"].split()),
        documents=tuple(d for d in documents if d),
    )


def load_all(root: Path = SCENARIO_DIR) -> tuple[Case, ...]:
    return tuple(load(p.parent.name, root) for p in sorted(root.glob("*/expected.yaml")))


CASES = load_all()


def write(name: str, writer: Writer) -> list[Obj]:
    """Writes scenario `name` through `writer`: `write("checkout-oomkilled", writer)`."""
    return load(name).write(writer)
