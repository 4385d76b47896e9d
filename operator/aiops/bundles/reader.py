"""What a support bundle holds: its layout, detected from its file names, and its objects and pod logs,
keyed the way the API server serves them.

Layouts read:
- `kubectl cluster-info dump --output-directory DIR` (`-o json`, the default, or `-o yaml`):
  `nodes.json`, `<ns>/{pods,events,services,deployments,replicasets,daemonsets}.json` and
  `<ns>/<pod>/logs.txt` (each container's log between `==== START logs for container ...` and
  `==== END ...` lines).
- `kubectl cluster-info dump` to stdout (one file): the same lists as JSON documents one after another,
  the log blocks between them.
- An OpenShift must-gather (`oc adm must-gather`, `oc adm inspect`): under one or more image folders,
  `namespaces/<ns>/<group>/<resource>.yaml` lists (`core/pods.yaml`, `apps/deployments.yaml`, ...),
  `namespaces/<ns>/pods/<pod>/<pod>.yaml`, `cluster-scoped-resources/core/nodes/<node>.yaml` and the logs
  `namespaces/<ns>/pods/<pod>/<container>/<container>/logs/{current,previous}[.insecure].log`.
Any of them may come packed as a tar archive (`.tar.gz`). Objects are kept as the API server returns
them, with `kind` and `apiVersion` set (list items lack them), because analyzers read both.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from aiops.bundles import archive
from aiops.bundles.archive import DEFAULT_LIMITS, BundleError, Limits

Obj = dict[str, Any]

# kind -> the cluster-wide collection the API server serves it under (the informer cache's keys).
COLLECTIONS = {
    "Pod": "/api/v1/pods",
    "Event": "/api/v1/events",
    "Node": "/api/v1/nodes",
    "Service": "/api/v1/services",
    "PersistentVolumeClaim": "/api/v1/persistentvolumeclaims",
    "ResourceQuota": "/api/v1/resourcequotas",
    "Deployment": "/apis/apps/v1/deployments",
    "ReplicaSet": "/apis/apps/v1/replicasets",
    "StatefulSet": "/apis/apps/v1/statefulsets",
    "DaemonSet": "/apis/apps/v1/daemonsets",
    "Job": "/apis/batch/v1/jobs",
    "CronJob": "/apis/batch/v1/cronjobs",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/horizontalpodautoscalers",
    "Certificate": "/apis/cert-manager.io/v1/certificates",
}
KIND_OF_RESOURCE = {path.rsplit("/", 1)[1]: kind for kind, path in COLLECTIONS.items()}
_RESOURCES = "|".join(KIND_OF_RESOURCE)

CLUSTER_INFO_DUMP = "kubectl cluster-info dump"
CLUSTER_INFO_STDOUT = "kubectl cluster-info dump (stdout)"
MUST_GATHER = "must-gather"

# Paths relative to the layout's root folder.
_DUMP_LIST = re.compile(rf"(?:(?P<ns>[^/]+)/)?(?P<resource>{_RESOURCES})\.(?P<ext>json|yaml)")
_DUMP_LOGS = re.compile(r"(?P<ns>[^/]+)/(?P<pod>[^/]+)/logs\.txt")
_MG_LIST = re.compile(rf"namespaces/(?P<ns>[^/]+)/(?P<group>[^/]+)/(?P<resource>{_RESOURCES})\.yaml")
_MG_POD = re.compile(r"namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/]+)/(?P=pod)\.yaml")
_MG_CLUSTER = re.compile(rf"cluster-scoped-resources/(?P<group>[^/]+)/(?P<resource>{_RESOURCES})/[^/]+\.yaml")
_MG_LOG = re.compile(
    r"namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/]+)/(?P<container>[^/]+)/(?P=container)/logs/"
    r"(?P<which>current|previous)(?:\.insecure)?\.log"
)
_DUMP_PATTERNS = (_DUMP_LIST, _DUMP_LOGS)
_MG_PATTERNS = (_MG_LIST, _MG_POD, _MG_CLUSTER, _MG_LOG)
# Where a layout's root is: the folder above these (a tarball adds one or two folders on top).
_MG_ROOT = re.compile(
    r"(?P<root>(?:.*/)?)(?:namespaces/[^/]+/(?:core|apps|batch|pods)/|cluster-scoped-resources/core/)"
)
_DUMP_ROOT = re.compile(r"(?P<root>(?:.*/)?)(?:nodes|[^/]+/pods)\.(?:json|yaml)")

_LOG_START = re.compile(r"==== START logs for container (?P<container>\S+) of pod (?P<ns>[^/\s]+)/(?P<pod>\S+) ====")
_LOG_END = "==== END logs for container {container} of pod {ns}/{pod} ===="
# What kubectl writes in a log block when it could not read the log: not the container's output.
_LOG_ERRORS = ("Request log error:", "Create log request error:")
_STDOUT_TRAILER = "Cluster info dumped to"


@dataclass
class Snapshot:
    """A bundle's objects and logs, as the collectors will be served them."""

    source: str
    layout: str
    objects: dict[str, dict[tuple[str, str], Obj]] = field(default_factory=dict)  # collection -> (ns, name) -> obj
    logs: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)  # (ns, pod, container) -> log
    files_read: int = 0
    entries: int = 0
    log_files: int = 0
    captured_at: datetime | None = None  # the newest time the objects carry: the bundle's "now"

    def counts(self) -> dict[str, int]:
        """Objects by kind, as held."""
        kinds = {path: kind for kind, path in COLLECTIONS.items()}
        return {kinds[path]: len(objs) for path, objs in sorted(self.objects.items()) if objs}

    def all(self, kind: str) -> list[Obj]:
        return list(self.objects.get(COLLECTIONS[kind], {}).values())


def wanted(name: str) -> bool:
    """Whether a file at this path may be one the layouts read (any folders above their roots)."""
    if not name.endswith((".json", ".yaml", ".txt", ".log")):
        return False
    parts = name.split("/")
    return any(
        pattern.fullmatch("/".join(parts[i:])) for i in range(len(parts)) for pattern in _DUMP_PATTERNS + _MG_PATTERNS
    )


def load(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> Snapshot:
    """The snapshot of the bundle at `path`: a folder, a tar archive, or a cluster-info dump's stdout."""
    return parse(archive.read(path, wanted, limits))


def parse(files: archive.Files) -> Snapshot:
    """The objects and logs of the files read, by the layout their names show."""
    mg_roots = sorted({m["root"] for n in files.names if (m := _MG_ROOT.match(n))})
    dump_roots = sorted({m["root"] for n in files.names if (m := _DUMP_ROOT.fullmatch(n))})
    if mg_roots:
        snap = Snapshot(files.source, MUST_GATHER)
        _load_tree(snap, files, mg_roots, _load_must_gather_file)
    elif dump_roots:
        snap = Snapshot(files.source, CLUSTER_INFO_DUMP)
        _load_tree(snap, files, dump_roots[:1], _load_dump_file)
    elif len(files.names) == 1 and files.data.get(files.names[0], b"").lstrip()[:1] == b"{":
        snap = Snapshot(files.source, CLUSTER_INFO_STDOUT)
        _load_stdout(snap, files.names[0], files.data[files.names[0]])
    else:
        shown = ", ".join(sorted(files.names)[:5]) + (" ..." if len(files.names) > 5 else "")
        raise BundleError(
            f"{files.source}: unknown layout (found {shown}); expected a `kubectl cluster-info dump` "
            "(nodes.json, <namespace>/pods.json), its stdout saved to a file, or a must-gather "
            "(namespaces/<namespace>/core/pods.yaml, cluster-scoped-resources/core/nodes/)"
        )
    snap.entries = files.entries
    snap.captured_at = _captured_at(snap)
    return snap


def _load_tree(snap: Snapshot, files: archive.Files, roots: list[str], load_file) -> None:
    for root in roots:
        for name in sorted(files.data):
            if name.startswith(root):
                load_file(snap, name, name[len(root) :], files.data[name])


def _load_dump_file(snap: Snapshot, name: str, rel: str, data: bytes) -> None:
    if m := _DUMP_LIST.fullmatch(rel):
        if (m["ns"] is None) != (m["resource"] == "nodes"):
            return  # nodes are cluster-wide; anything else at the top is not the dump's
        doc = _decode(snap.source, name, data, m["ext"])
        _add_document(snap, name, doc, KIND_OF_RESOURCE[m["resource"]])
    elif m := _DUMP_LOGS.fullmatch(rel):
        snap.files_read += 1
        _add_log_blocks(snap, name, data.decode("utf-8", errors="replace").splitlines())


def _load_must_gather_file(snap: Snapshot, name: str, rel: str, data: bytes) -> None:
    if m := (_MG_LIST.fullmatch(rel) or _MG_CLUSTER.fullmatch(rel)):
        kind = KIND_OF_RESOURCE[m["resource"]]
        if _group(COLLECTIONS[kind]) == m["group"]:
            _add_document(snap, name, _decode(snap.source, name, data, "yaml"), kind)
    elif _MG_POD.fullmatch(rel):
        _add_document(snap, name, _decode(snap.source, name, data, "yaml"), "Pod")
    elif m := _MG_LOG.fullmatch(rel):
        snap.files_read += 1
        text = data.decode("utf-8", errors="replace")
        if text.strip():
            snap.log_files += 1
            snap.logs.setdefault((m["ns"], m["pod"], m["container"]), {})[m["which"]] = text


def _load_stdout(snap: Snapshot, name: str, data: bytes) -> None:
    """JSON lists one after another, with log blocks between them (what `cluster-info dump` prints)."""
    text = data.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        line = text[pos:line_end]
        if text[pos] == "{":
            try:
                doc, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise BundleError(
                    f"{snap.source}: {name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}; "
                    "is the dump truncated?"
                ) from None
            except RecursionError:
                raise BundleError(f"{snap.source}: {name}: nested too deeply to be Kubernetes objects") from None
            list_kind = str(doc.get("kind") or "").removesuffix("List") if isinstance(doc, dict) else ""
            _add_document(snap, f"{name} ({doc.get('kind') if isinstance(doc, dict) else 'a value'})", doc, list_kind)
        elif m := _LOG_START.fullmatch(line):
            end = _LOG_END.format(**m.groupdict())
            stop = text.find(f"\n{end}", line_end)
            if stop < 0:
                raise BundleError(f"{snap.source}: {name}: the log block `{line}` has no END line: truncated?")
            _add_log_blocks(snap, name, text[pos : stop + 1 + len(end)].splitlines())
            pos = stop + 1 + len(end)
        elif line.startswith(_STDOUT_TRAILER):
            pos = line_end
        else:
            lineno = text.count("\n", 0, pos) + 1
            raise BundleError(
                f"{snap.source}: {name}: line {lineno} is neither JSON nor a log block ({line[:80]!r}): "
                "not `kubectl cluster-info dump -o json` output"
            )


def _add_log_blocks(snap: Snapshot, name: str, lines: list[str]) -> None:
    """Each `==== START logs for container C of pod NS/P ====` ... END block: that container's log."""
    i = 0
    while i < len(lines):
        m = _LOG_START.fullmatch(lines[i])
        if not m:
            i += 1
            continue
        end = _LOG_END.format(**m.groupdict())
        try:
            j = lines.index(end, i + 1)
        except ValueError:
            raise BundleError(f"{snap.source}: {name}: `{lines[i]}` has no END line: is the file truncated?") from None
        body = lines[i + 1 : j]
        if body and not (len(body) == 1 and body[0].startswith(_LOG_ERRORS)):
            snap.log_files += 1
            snap.logs.setdefault((m["ns"], m["pod"], m["container"]), {})["current"] = "\n".join(body)
        i = j + 1


class _Loader(yaml.CSafeLoader):
    """YAML read as the API server's JSON would be: timestamps stay strings (JSON has no dates)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


def _decode(source: str, name: str, data: bytes, ext: str) -> Any:
    try:
        if ext == "json":
            return json.loads(data)
        return _without_aliases(source, name, yaml.load(data, Loader=_Loader))
    except RecursionError:
        raise BundleError(f"{source}: {name}: nested too deeply to be a Kubernetes object: refused") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BundleError(f"{source}: {name}: invalid JSON at {where}: {exc.msg}; is the file truncated?") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "an unknown line"
        problem = getattr(exc, "problem", None) or exc
        raise BundleError(f"{source}: {name}: invalid YAML at {where}: {problem}; is the file truncated?") from None
    except UnicodeDecodeError as exc:
        raise BundleError(f"{source}: {name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _without_aliases(source: str, name: str, doc: Any) -> Any:
    """The document, unless YAML aliases made one list or mapping appear twice: Kubernetes never writes
    them, and a few nested ones (a "billion laughs") would expand to more than any memory once served."""
    seen: set[int] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            if id(node) in seen:
                raise BundleError(f"{source}: {name}: YAML anchors and aliases are not kubectl output: refused")
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)
    return doc


def _add_document(snap: Snapshot, name: str, doc: Any, default_kind: str) -> None:
    """A list (`items`, null when empty) or one object; items of kinds the collectors do not read are skipped."""
    snap.files_read += 1
    if doc is None:
        return  # an empty file: the dump found nothing to write
    if not isinstance(doc, dict) or not ("items" in doc or "metadata" in doc):
        raise BundleError(f"{snap.source}: {name}: neither a Kubernetes list (items) nor an object (metadata)")
    items = (doc.get("items") or []) if "items" in doc else [doc]
    if not isinstance(items, list):
        raise BundleError(f"{snap.source}: {name}: items is a {type(items).__name__}, not a list")
    for i, item in enumerate(items):
        meta = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise BundleError(f"{snap.source}: {name}: item {i} has no metadata.name: not a Kubernetes object")
        kind = item.get("kind") or default_kind
        path = COLLECTIONS.get(kind)
        if path is None:
            continue
        obj = {"kind": kind, "apiVersion": item.get("apiVersion") or _api_version(path), **item}
        snap.objects.setdefault(path, {})[(meta.get("namespace") or "", meta["name"])] = obj


def _group(path: str) -> str:
    """The must-gather folder of a collection's API group: `core` for the legacy group."""
    return "core" if path.startswith("/api/v1") else path.split("/")[2]


def _api_version(path: str) -> str:
    return path.removeprefix("/api/").removeprefix("/apis/").rsplit("/", 1)[0]


# Where objects carry the times things happened; the newest is when the bundle was taken.
_TIME_FIELDS = ("lastTimestamp", "eventTime", "firstTimestamp")
_CONDITION_TIMES = ("lastTransitionTime", "lastHeartbeatTime", "lastProbeTime", "lastUpdateTime")


def _captured_at(snap: Snapshot) -> datetime | None:
    times: list[str] = []
    for objs in snap.objects.values():
        for o in objs.values():
            times.append((o.get("metadata") or {}).get("creationTimestamp") or "")
            times.extend(o.get(f) or "" for f in _TIME_FIELDS)
            status = o.get("status") if isinstance(o.get("status"), dict) else {}
            for c in status.get("conditions") or []:
                times.extend(c.get(f) or "" for f in _CONDITION_TIMES if isinstance(c, dict))
            for cs in status.get("containerStatuses") or []:
                for state in ((cs or {}).get("state") or {}, (cs or {}).get("lastState") or {}):
                    for detail in state.values():
                        if isinstance(detail, dict):
                            times.extend(str(detail.get(f) or "") for f in ("startedAt", "finishedAt"))
    parsed = [t for t in map(_parse_time, times) if t is not None]
    return max(parsed) if parsed else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def summary(snap: Snapshot) -> dict[str, Any]:
    """What the bundle held: its layout and counts, for the report."""
    counts = snap.counts()
    return {
        "source": snap.source,
        "layout": snap.layout,
        "capturedAt": snap.captured_at.strftime("%Y-%m-%dT%H:%M:%SZ") if snap.captured_at else None,
        "objects": sum(n for kind, n in counts.items() if kind != "Event"),
        "byKind": {kind: n for kind, n in counts.items() if kind != "Event"},
        "events": counts.get("Event", 0),
        "warningEvents": sum(e.get("type") == "Warning" for e in snap.all("Event")),
        "logFiles": snap.log_files,
        "containersWithLogs": len(snap.logs),
        "filesRead": snap.files_read,
        "entries": snap.entries,
        "namespaces": sorted(Counter(ns for objs in snap.objects.values() for ns, _ in objs if ns)),
    }
