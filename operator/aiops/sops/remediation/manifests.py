"""Edits a workload's manifests in a checkout of an Argo CD source: images, replicas, resources.

The rest of each file stays byte for byte as it was (comments, quoting, key order, other documents): the
file is parsed for node positions only, the few values are replaced or inserted in the text, and the
result is parsed again and must equal the original with exactly the intended values changed; anything
else is an error and nothing is written. What is changed where:

- a plain directory of manifests: the Deployment's document (`image`, `spec.replicas`, `resources`);
- kustomize: `images:` and `replicas:` of the kustomization at the source's path (added when absent, the
  way `kustomize edit set image` does), and resources in the Deployment's manifest when the kustomization
  lists it directly;
- a Helm chart: nothing; which value a chart reads an image tag or a replica count from is the chart's own
  business, so the step says what to change, by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILES = 2000


class ManifestError(Exception):
    """The change cannot be written into this source; the message says why and what to do instead."""


class NotFound(ManifestError):
    """The workload's manifest is not in this source."""


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Change:
    """What the action wants the manifests to say."""

    images: dict[str, tuple[str, str]] = field(default_factory=dict)  # container -> (current image, wanted)
    replicas: int | None = None
    container: str | None = None  # whose resources
    resources: dict[str, dict[str, str]] = field(default_factory=dict)  # {"limits": {"memory": "512Mi"}}


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the repository root
    text: str  # the file's new content
    what: list[str]  # one line per value changed, for the commit and the pull request


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """name, tag, digest of an image reference (a registry port is not a tag)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def plan(root: Path, path: str, recurse: bool, helm: bool, workload: Workload, change: Change) -> list[Edit]:
    """The edits that make the source at `path` say `change`; raises ManifestError (NotFound) when it cannot."""
    base = (root / path).resolve()
    if not base.is_relative_to(root.resolve()) or not base.is_dir():
        raise NotFound(f"path {path!r} is not a directory of the repository")
    if helm or (base / "Chart.yaml").exists():
        raise ManifestError(f"path {path or '.'} is a Helm chart: Helm sources need a manual change: {wanted(change)}")
    kustomization = next((base / k for k in KUSTOMIZATIONS if (base / k).is_file()), None)
    if kustomization is not None:
        return _kustomize(root, kustomization, workload, change)
    files = sorted(f for f in (base.rglob("*") if recurse else base.iterdir()) if ".git" not in f.parts[-8:])
    found = _find(root, [f for f in files[:MAX_FILES] if f.suffix in SUFFIXES and f.is_file()], workload)
    doc = found.documents[found.index]
    for container, (_, image) in change.images.items():
        found.merge(_container(found, doc, workload, container), {"image": image}, container)
    if change.replicas is not None:
        found.merge(_child(doc, "spec"), {"replicas": change.replicas}, "spec")
    if change.resources:
        found.merge(_container(found, doc, workload, change.container), {"resources": change.resources},
                    change.container)  # fmt: skip
    return [found.edit()]


def wanted(change: Change) -> str:
    parts = [f"image of container {c} to {image}" for c, (_, image) in change.images.items()]
    if change.replicas is not None:
        parts.append(f"replicas to {change.replicas}")
    if change.resources:
        parts.append(f"resources of container {change.container} to {json.dumps(change.resources, sort_keys=True)}")
    return "set " + ", ".join(parts) + " in the values that feed the chart"


class YamlFile:
    """One file: its documents' nodes (for positions), the values they should hold after the edits, the edits."""

    def __init__(self, root: Path, path: Path):
        self.rel = str(path.relative_to(root))
        self.path = path
        try:
            self.text = path.read_text()
            self.documents = list(yaml.compose_all(self.text))
            self.expected = list(yaml.safe_load_all(self.text))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ManifestError(f"{self.rel} cannot be read as YAML: {str(exc)[:300]}") from None
        self.index = 0  # the document of the workload, once found
        self.changes: list[tuple[int, int, int, str]] = []  # (start, end, order, text)
        self.what: list[str] = []

    def _replace(self, start: int, end: int, text: str) -> None:
        self.changes.append((start, end, len(self.changes), text))

    def merge(self, node: yaml.Node, values: dict[str, Any], label: str, expected: Any = None) -> None:
        """Makes the mapping `node` hold `values` (nested dicts merge into nested mappings)."""
        if not isinstance(node, yaml.MappingNode):
            raise ManifestError(f"{self.rel}: {label} is not a mapping")
        target = expected if expected is not None else self._expected(node)
        for key, value in values.items():
            child = _child(node, key)
            where = f"{label}.{key}" if label else key
            if isinstance(value, dict) and isinstance(child, yaml.MappingNode):
                self.merge(child, value, where, target.setdefault(key, {}))
                continue
            old = target.get(key) if isinstance(target, dict) else None
            if child is None:
                self._insert(node, key, value)
            elif isinstance(child, yaml.ScalarNode) and (not isinstance(value, dict) or child.tag.endswith(":null")):
                self._set_scalar(child, value)
            else:
                raise ManifestError(f"{self.rel}: {where} is not a single value that can be replaced")
            target[key] = _merged(old, value)
            self.what.append(f"{where}: {_show(old)} -> {_show(value)}")

    def append(self, node: yaml.SequenceNode, item: dict[str, Any], expected: list, label: str) -> None:
        """Adds an item to a block sequence, before its first item (the order of images/replicas does not matter)."""
        if node.flow_style or not node.value:
            raise ManifestError(f"{self.rel}: {label} is a flow sequence; edit it by hand")
        dash = node.start_mark
        line_start = self.text.rfind("\n", 0, dash.index) + 1
        if self.text[line_start : dash.index].strip():
            raise ManifestError(f"{self.rel}: {label} does not start on a line of its own")
        lines = yaml.safe_dump([item], default_flow_style=False, sort_keys=False, width=1000).splitlines()
        self._replace(line_start, line_start, "".join(" " * dash.column + line + "\n" for line in lines))
        expected.insert(0, item)
        self.what.append(f"{label}: added {_show(item)}")

    def _expected(self, node: yaml.Node) -> Any:
        """The python value that stands for `node` in the expected documents (found by position)."""
        for doc_node, doc in zip(self.documents, self.expected, strict=True):
            found = _locate(doc_node, doc, node)
            if found is not None:
                return found
        raise ManifestError(f"{self.rel}: internal: node not found")  # pragma: no cover

    def _set_scalar(self, node: yaml.ScalarNode, value: Any) -> None:
        start, end = node.start_mark.index, node.end_mark.index
        text = _scalar(value, node.style) if not isinstance(value, dict) else _flow(value)
        if start == end and not self.text[start - 1 : start].isspace():
            text = " " + text  # `key:` with nothing after it
        self._replace(start, end, text)

    def _insert(self, node: yaml.MappingNode, key: str, value: Any) -> None:
        if node.flow_style:
            close = node.end_mark.index - 1
            if self.text[close] != "}":
                raise ManifestError(f"{self.rel}: a flow mapping at line {node.start_mark.line + 1} is not closed")
            self._replace(close, close, (", " if node.value else "") + _flow({key: value})[1:-1])
            return
        first_key, first_value = node.value[0]
        col = first_key.start_mark.column
        lines = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False, width=1000).splitlines()
        block = "".join(" " * col + line + "\n" for line in lines)
        line_start = self.text.rfind("\n", 0, first_key.start_mark.index) + 1
        if not self.text[line_start : first_key.start_mark.index].strip():
            self._replace(line_start, line_start, block)
            return
        # The first key follows a sequence item's "- ": the new key goes on the line after that first entry.
        if not isinstance(first_value, yaml.ScalarNode) or first_value.end_mark.line != first_key.start_mark.line:
            raise ManifestError(f"{self.rel}: cannot add {key} at line {first_key.start_mark.line + 1}; edit by hand")
        eol = self.text.find("\n", first_value.end_mark.index)
        if eol == -1:
            self._replace(len(self.text), len(self.text), "\n" + block.rstrip("\n"))
        else:
            self._replace(eol + 1, eol + 1, block)

    def edit(self) -> Edit:
        """The new text, checked: it parses to the expected documents, or ManifestError."""
        text = self.text
        ordered = sorted(self.changes, key=lambda c: (c[0], c[2]), reverse=True)
        for (start, end, _, new), later in zip(ordered, [None, *ordered], strict=False):
            if later is not None and end > later[0]:
                raise ManifestError(f"{self.rel}: overlapping edits; edit by hand")
            text = text[:start] + new + text[end:]
        try:
            result = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise ManifestError(
                f"{self.rel}: the edited file does not parse ({str(exc)[:200]}); edit by hand"
            ) from None
        if result != self.expected:
            raise ManifestError(f"{self.rel}: the edit would change more than the values asked for; edit by hand")
        return Edit(self.rel, text, self.what)


def _merged(old: Any, value: Any) -> Any:
    if isinstance(old, dict) and isinstance(value, dict):
        return {**old, **{k: _merged(old.get(k), v) for k, v in value.items()}}
    return value


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)


def _scalar(value: Any, style: str | None) -> str:
    if isinstance(value, bool | int):
        return json.dumps(value)
    if style == '"':
        return json.dumps(str(value))
    if style == "'":
        return "'" + str(value).replace("'", "''") + "'"
    dumped = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return dumped.removesuffix("...").strip()


def _flow(value: dict[str, Any]) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip()


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _locate(node: yaml.Node, value: Any, wanted: yaml.Node) -> Any:
    if node is wanted:
        return value
    if isinstance(node, yaml.MappingNode) and isinstance(value, dict):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value in value:
                found = _locate(v, value[k.value], wanted)
                if found is not None:
                    return found
    if isinstance(node, yaml.SequenceNode) and isinstance(value, list):
        for n, v in zip(node.value, value, strict=False):
            found = _locate(n, v, wanted)
            if found is not None:
                return found
    return None


def _scalar_at(node: yaml.Node | None, *keys: str) -> str | None:
    for key in keys:
        node = _child(node, key)
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _find(root: Path, files: list[Path], workload: Workload) -> YamlFile:
    """The one file and document that define the workload; NotFound, or an error when several do."""
    hits = []
    for path in files:
        if path.name in KUSTOMIZATIONS:
            continue
        try:
            candidate = YamlFile(root, path)
        except ManifestError:
            continue  # not YAML (a template, a fragment): Argo CD would not apply it either
        for i, doc in enumerate(candidate.documents):
            if (
                _scalar_at(doc, "kind") == workload.kind
                and _scalar_at(doc, "metadata", "name") == workload.name
                and _scalar_at(doc, "metadata", "namespace") in (None, workload.namespace)
            ):
                candidate.index = i
                hits.append(candidate)
    if not hits:
        raise NotFound(f"no manifest of {workload} among {len(files)} file(s)")
    if len(hits) > 1:
        raise ManifestError(f"{workload} is defined in several files ({', '.join(h.rel for h in hits)}); edit by hand")
    return hits[0]


def _container(found: YamlFile, doc: yaml.Node, workload: Workload, name: str | None) -> yaml.Node:
    seq = _child(_child(_child(_child(doc, "spec"), "template"), "spec"), "containers")
    containers = {_scalar_at(c, "name"): c for c in (seq.value if isinstance(seq, yaml.SequenceNode) else [])}
    if name not in containers:
        raise ManifestError(f"{found.rel}: the manifest of {workload} has no container {name!r}")
    return containers[name]


def _kustomize(root: Path, path: Path, workload: Workload, change: Change) -> list[Edit]:
    kust = YamlFile(root, path)
    doc = kust.documents[0] if kust.documents else None
    if not isinstance(doc, yaml.MappingNode):
        raise ManifestError(f"{kust.rel} is not a kustomization")
    expected = kust.expected[0]
    edits = []
    for container, (current, image) in change.images.items():
        _kustomize_image(kust, doc, expected, current, image, container)
    if change.replicas is not None:
        entries = _child(doc, "replicas")
        item = {"name": workload.name, "count": change.replicas}
        _kustomize_entry(kust, doc, expected, "replicas", entries, "name", workload.name, {"count": change.replicas},
                         item)  # fmt: skip
    if kust.changes:
        edits.append(kust.edit())
    if change.resources:
        listed = [path.parent / r for r in (expected.get("resources") or []) if isinstance(r, str)]
        files = [
            f for f in listed if f.suffix in SUFFIXES and f.is_file() and f.resolve().is_relative_to(root.resolve())
        ]
        try:
            found = _find(root, files, workload)
        except NotFound:
            raise ManifestError(
                f"{workload} is not in a manifest that {kust.rel} lists itself (it comes from a base or a generator): "
                f"set the resources of container {change.container} by hand, or with a patch in {kust.rel}"
            ) from None
        container = _container(found, found.documents[found.index], workload, change.container)
        found.merge(container, {"resources": change.resources}, change.container)
        edits.append(found.edit())
    return edits


def _kustomize_image(kust: YamlFile, doc: yaml.MappingNode, expected: dict, current: str, image: str, container: str):
    current_name = split_image(current)[0]
    name, tag, digest = split_image(image)
    entries = _child(doc, "images")
    values: dict[str, Any] = {"digest": digest} if digest else {"newTag": tag or "latest"}
    matching = None
    if isinstance(entries, yaml.SequenceNode):
        matching = next(
            (e for e in entries.value if current_name in (_scalar_at(e, "newName"), _scalar_at(e, "name"))), None
        )
    if matching is not None:
        if (_scalar_at(matching, "newName") or _scalar_at(matching, "name")) != name:
            values["newName"] = name
        if not digest and _child(matching, "digest") is not None:
            raise ManifestError(f"{kust.rel}: images entry {current_name} pins a digest; change it to {image} by hand")
        index = entries.value.index(matching)
        kust.merge(matching, values, f"images[{index}]", expected["images"][index])
        return
    item = {"name": current_name, **({"newName": name} if name != current_name else {}), **values}
    _kustomize_entry(kust, doc, expected, "images", entries, "name", current_name, values, item)


def _kustomize_entry(kust, doc, expected, key, entries, match_key, match, values, item) -> None:
    if entries is None:
        kust.merge(doc, {key: [item]}, "", expected)
    elif isinstance(entries, yaml.SequenceNode):
        matching = next((e for e in entries.value if _scalar_at(e, match_key) == match), None)
        if matching is None:
            kust.append(entries, item, expected[key], key)
        else:
            index = entries.value.index(matching)
            kust.merge(matching, values, f"{key}[{index}]", expected[key][index])
    else:
        raise ManifestError(f"{kust.rel}: {key} is not a list")
