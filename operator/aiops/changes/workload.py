"""The proposed object as the checks read it: a Deployment's or StatefulSet's replicas, pod labels and
containers with their resources parsed, or a ValueError naming the first field the API server would reject
too (the checks then read only well-formed values). Kubernetes quantities are parsed and shown here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from kubernetes.utils import parse_quantity

PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
RESOURCES = ("cpu", "memory")  # the ones compared with usage; others (GPUs, ephemeral storage) are left alone
POD = "spec.template.spec"
INT32_MAX = 2**31 - 1

# The API server's grammar (apimachinery resource.Quantity): a decimal number, then a binary or decimal SI
# suffix or a decimal exponent. Python's Decimal alone also takes "NaN", "Infinity", "1_000" and blanks.
_QUANTITY = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?")


@dataclass(frozen=True)
class Container:
    name: str
    path: str  # spec.template.spec.containers[api]
    init: bool
    image: str
    requests: dict[str, float]  # cpu in cores, memory in bytes: only those set
    limits: dict[str, float]
    probes: frozenset[str]

    def request(self, resource: str) -> float | None:
        """The request the scheduler uses: the one set, else the limit (the API server defaults it so)."""
        return self.requests.get(resource, self.limits.get(resource))


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    namespace: str | None
    annotations: dict[str, str]
    replicas: int | None  # None: not set, the live count stays (an HPA's, typically)
    pod_labels: dict[str, str]
    containers: list[Container]  # the regular ones, then the init containers


def quantity(value: Any, path: str) -> float:
    """A Kubernetes quantity ("500m", "1Gi", "1e3", 0.5) as a number; ValueError naming `path` otherwise."""
    example = "e.g. 512Mi, 1Gi, 250m, 0.5"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{path}: a {type(value).__name__} is not a Kubernetes quantity ({example})")
    if isinstance(value, int) and value.bit_length() > 64:  # and str() of a huge one would fail on its own
        raise ValueError(f"{path}: the number is too large for a Kubernetes quantity")
    text = str(value)
    if not _QUANTITY.fullmatch(text):
        raise ValueError(f"{path}: {text[:64]!r} is not a Kubernetes quantity ({example})")
    number = float(parse_quantity(text))
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{path}: {text[:64]!r} must be a finite, non-negative quantity")
    return number


def show_bytes(n: float) -> str:
    """Bytes as a short binary quantity: 1.1Gi, 640Mi."""
    for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size:
            return _short(n / size) + unit
    return _short(n)


def show_cores(x: float) -> str:
    """Cores as a short quantity: 250m below one core, 1.5 from one."""
    return f"{round(x * 1000)}m" if x < 1 else _short(x)


def show(resource: str, amount: float) -> str:
    return show_bytes(amount) if resource == "memory" else show_cores(amount)


def at_least(resource: str, amount: float) -> str:
    """A quantity to write into the manifest, rounded up: whole MiB of memory, whole millicores of CPU."""
    if resource == "memory":
        return f"{math.ceil(amount / 2**20)}Mi"
    return f"{math.ceil(amount * 1000)}m"


def _short(x: float) -> str:
    digits = 2 if x < 10 else 1 if x < 100 else 0
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:.0f}"


def parse(obj: Any) -> Workload:
    """The fields the checks read, validated as the API server would; ValueError naming the field."""
    if not isinstance(obj, dict):
        raise ValueError("the proposed object is not a mapping")
    kind = obj.get("kind")
    meta = _mapping(obj.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("metadata.name: required, a non-empty string")
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ValueError("metadata.namespace: must be a string")
    spec = _mapping(obj.get("spec"), "spec", required=True)
    replicas = spec.get("replicas")
    if replicas is not None and (
        isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= INT32_MAX
    ):
        raise ValueError(f"spec.replicas: must be an integer from 0 to {INT32_MAX}")
    template = _mapping(spec.get("template"), "spec.template", required=True)
    pod = _mapping(template.get("spec"), POD, required=True)
    containers = _containers(pod, "containers", required=True) + _containers(pod, "initContainers")
    names = [c.name for c in containers]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{POD}: container names must be unique across containers and initContainers: {twice}")
    return Workload(
        kind=str(kind or ""),
        name=name,
        namespace=namespace or None,
        annotations=_strings(meta.get("annotations"), "metadata.annotations"),
        replicas=replicas,
        pod_labels=_strings(
            _mapping(template.get("metadata"), "spec.template.metadata").get("labels"), "spec.template.metadata.labels"
        ),
        containers=containers,
    )


def _mapping(value: Any, path: str, required: bool = False) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{path}: {'required, ' if value is None else ''}must be a mapping")
    return value


def _strings(value: Any, path: str) -> dict[str, str]:
    found = _mapping(value, path)
    for k, v in found.items():
        if not isinstance(v, str):
            raise ValueError(f"{path}[{str(k)[:64]}]: must be a string, not {type(v).__name__}")
    return found


def _containers(pod: dict, field: str, required: bool = False) -> list[Container]:
    items = pod.get(field)
    path = f"{POD}.{field}"
    if items is None and not required:
        return []
    if not isinstance(items, list) or (required and not items):
        raise ValueError(f"{path}: must be a list{' of at least one container' if required else ''}")
    out = []
    for i, c in enumerate(items):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise ValueError(f"{path}[{i}]: a container needs a name")
        at = f"{path}[{c['name']}]"
        image = c.get("image")
        if not isinstance(image, str) or not image.strip():
            raise ValueError(f"{at}.image: required, a non-empty string")
        resources = _mapping(c.get("resources"), f"{at}.resources")
        requests, limits = (_amounts(resources.get(k), f"{at}.resources.{k}") for k in ("requests", "limits"))
        for r in RESOURCES:
            if r in requests and r in limits and requests[r] > limits[r]:
                raise ValueError(
                    f"{at}.resources.requests.{r}: {show(r, requests[r])} must not exceed its limit "
                    f"{show(r, limits[r])}"
                )
        for p in PROBES:
            _mapping(c.get(p), f"{at}.{p}")
        out.append(
            Container(
                name=c["name"],
                path=at,
                init=field == "initContainers",
                image=image,
                requests=requests,
                limits=limits,
                probes=frozenset(p for p in PROBES if c.get(p)),
            )
        )
    return out


def _amounts(value: Any, path: str) -> dict[str, float]:
    found = _mapping(value, path).items()
    return {r: quantity(v, f"{path}.{r}") for r, v in found if r in RESOURCES and v is not None}
