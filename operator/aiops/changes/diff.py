"""What a change does: a JSON merge patch applied to the live object, and the fields of `spec` that differ
between the live object and the proposed one, by category.

Lists whose items all carry a distinct `name` (containers, env, volumes) are compared item by item and
named in paths (`spec.template.spec.containers[api].env[LOG_LEVEL].value`); other lists of one length item
by item at their positions (`args[1]`), of different lengths as whole values.
A field the proposed object leaves out is no change when the live value is what the API server fills in
by default (DEFAULTS): a rendered manifest rarely spells those out. Values are shown redacted (the
diagnosis' Redactor: env values of secret-looking names, passwords in URLs, tokens) and at most 512
characters long.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from aiops.api.analysisrun import ChangeCategory, FieldChange
from aiops.changes.workload import PROBES, quantity
from aiops.diagnosis.redaction import Redactor

VALUE_MAX = 512  # FieldChange.before/after and path
ANY = object()  # a default the API server picks from other fields: whatever the live object holds
_ABSENT = object()
_POD = ("spec", "template", "spec")
_CONTAINER_LISTS = ("containers", "initContainers")
_DOWNWARD_API_VERSION = ("downwardAPI", "items", "[]", "fieldRef", "apiVersion")
_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}

# Paths with `[]` for an item of a list keyed by name. An empty mapping is never a change either.
DEFAULTS: dict[tuple[str, ...], Any] = {
    ("spec", "replicas"): ANY,  # left out: the live count stays (kubectl apply, Argo CD with an HPA)
    ("spec", "revisionHistoryLimit"): 10,
    ("spec", "progressDeadlineSeconds"): 600,
    ("spec", "strategy", "type"): "RollingUpdate",
    ("spec", "strategy", "rollingUpdate", "maxSurge"): "25%",
    ("spec", "strategy", "rollingUpdate", "maxUnavailable"): "25%",
    ("spec", "podManagementPolicy"): "OrderedReady",
    ("spec", "updateStrategy", "type"): "RollingUpdate",
    ("spec", "updateStrategy", "rollingUpdate", "partition"): 0,
    ("spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted"): "Retain",
    ("spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"): "Retain",
    ("spec", "template", "metadata", "creationTimestamp"): None,
    (*_POD, "restartPolicy"): "Always",
    (*_POD, "terminationGracePeriodSeconds"): 30,
    (*_POD, "dnsPolicy"): "ClusterFirst",
    (*_POD, "schedulerName"): "default-scheduler",
    (*_POD, "serviceAccount"): ANY,  # the deprecated copy of serviceAccountName
    **{
        (*_POD, "volumes", "[]", source, "defaultMode"): 420  # 0644
        for source in ("configMap", "secret", "projected", "downwardAPI")
    },
    (*_POD, "volumes", "[]", *_DOWNWARD_API_VERSION): "v1",
    (*_POD, "volumes", "[]", "projected", "sources", "[]", *_DOWNWARD_API_VERSION): "v1",
    **{
        ("spec", "volumeClaimTemplates", "[]", *field): value
        for field, value in (
            (("apiVersion",), "v1"),
            (("kind",), "PersistentVolumeClaim"),
            (("spec", "volumeMode"), "Filesystem"),
            (("status",), ANY),
        )
    },
    **{
        (*_POD, lst, "[]", field): value
        for lst in _CONTAINER_LISTS
        for field, value in (
            ("terminationMessagePath", "/dev/termination-log"),
            ("terminationMessagePolicy", "File"),
            ("imagePullPolicy", ANY),  # Always for :latest, IfNotPresent otherwise
        )
    },
    **{
        (*_POD, lst, "[]", *field): value
        for lst in _CONTAINER_LISTS
        for field, value in (
            (("ports", "[]", "protocol"), "TCP"),
            (("env", "[]", "valueFrom", "fieldRef", "apiVersion"), "v1"),
            (("env", "[]", "valueFrom", "resourceFieldRef", "divisor"), "0"),
        )
    },
    **{
        (*_POD, lst, "[]", probe, *field): value
        for lst in _CONTAINER_LISTS
        for probe in PROBES
        for field, value in [((k,), v) for k, v in _PROBE_DEFAULTS.items()] + [(("httpGet", "scheme"), "HTTP")]
    },
}
_FIELD_CATEGORY = {
    "image": ChangeCategory.IMAGE,
    "resources": ChangeCategory.RESOURCES,
    "env": ChangeCategory.ENV,
    "envFrom": ChangeCategory.ENV,
    **dict.fromkeys(PROBES, ChangeCategory.PROBES),
}


def merge_patch(live: dict, patch: dict) -> dict:
    """RFC 7386: `patch` applied to a copy of `live`; a null deletes, a mapping merges, anything else replaces.
    Except that a list of named objects merges item by item by name, as `kubectl patch` (a strategic merge)
    merges containers, env and volumes: a patch naming one container must not drop the others."""
    return _merge(copy.deepcopy(live), patch)


def _named(items: Any) -> dict[str, dict] | None:
    """The list's items by name when every item is a mapping with a distinct string name; else None."""
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return None
    names = [i.get("name") for i in items]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return dict(zip(names, items, strict=True))


def _merge(target: Any, patch: Any) -> Any:
    if (old := _named(target)) is not None and (new := _named(patch)) is not None:
        merged = [_merge(item, new[name]) if name in new else item for name, item in old.items()]
        return merged + [copy.deepcopy(item) for name, item in new.items() if name not in old]
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def changes(live: dict | None, proposed: dict) -> list[FieldChange]:
    """The fields of `spec` that differ, in the order they appear; none for a new object (live None)."""
    if live is None:
        return []
    out: list[FieldChange] = []
    _walk(live.get("spec", _ABSENT), proposed.get("spec", _ABSENT), ("spec",), ("spec",), out, Redactor())
    return out


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _walk(a: Any, b: Any, path: tuple, generic: tuple, out: list[FieldChange], redactor: Redactor) -> None:
    a, b = (_ABSENT if v is None else v for v in (a, b))  # a null field is an absent one
    if a is _ABSENT or b is _ABSENT:
        if a is not b and not _is_default(generic, b if a is _ABSENT else a):
            out.append(_change(path, generic, a, b, redactor))
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            _walk(a.get(key, _ABSENT), b.get(key, _ABSENT), (*path, str(key)), (*generic, str(key)), out, redactor)
        return
    if (old := _named(a)) is not None and (new := _named(b)) is not None:
        for name in [*old, *(n for n in new if n not in old)]:
            item = (*path, f"[{name}]")
            _walk(old.get(name, _ABSENT), new.get(name, _ABSENT), item, (*generic, "[]"), out, redactor)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a:
        for i, (x, y) in enumerate(zip(a, b, strict=True)):  # items by position: their defaults still apply
            _walk(x, y, (*path, f"[{i}]"), (*generic, "[]"), out, redactor)
        return
    if not _same(a, b, generic):
        out.append(_change(path, generic, a, b, redactor))


def _is_default(generic: tuple, value: Any) -> bool:
    if generic in DEFAULTS:
        return DEFAULTS[generic] is ANY or DEFAULTS[generic] == value
    if isinstance(value, dict):
        return all(_is_default((*generic, k), v) for k, v in value.items())
    return False


def _same(a: Any, b: Any, generic: tuple) -> bool:
    if a == b and type(a) is type(b):
        return True
    if _category(generic) == ChangeCategory.RESOURCES and not isinstance(a, dict | list):
        try:  # "0.5" and "500m", "1Gi" and "1024Mi": the API server stores one canonical form
            return quantity(a, "") == quantity(b, "")
        except ValueError:
            return False
    return False


def _category(generic: tuple) -> ChangeCategory:
    if generic == ("spec", "replicas"):
        return ChangeCategory.REPLICAS
    if len(generic) > 5 and generic[:3] == _POD and generic[3] in _CONTAINER_LISTS:
        return _FIELD_CATEGORY.get(generic[5], ChangeCategory.OTHER)
    return ChangeCategory.OTHER


def _change(path: tuple, generic: tuple, a: Any, b: Any, redactor: Redactor) -> FieldChange:
    # an env var's value (not its valueFrom reference) goes to the Redactor as NAME=value: it judges by the name
    env_value = len(path) in (7, 8) and path[5] == "env" and path[6].startswith("[") and path[7:] in ((), ("value",))
    var = path[6][1:-1] if env_value else None
    category = _category(generic)
    if category == ChangeCategory.IMAGE:
        redactor = None  # a 4-part version tag would read as an IP address, and an image reference holds no secret
    return FieldChange(
        path=clip(_dotted(path), VALUE_MAX),
        category=category,
        before=_show(a, var, redactor),
        after=_show(b, var, redactor),
    )


def _dotted(path: tuple) -> str:
    return "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(path))


def _show(value: Any, var: str | None, redactor: Redactor | None) -> str | None:
    if value is _ABSENT:
        return None
    if redactor is None:
        return clip(value if isinstance(value, str) else json.dumps(value, default=str), VALUE_MAX)
    if var is not None and isinstance(value, dict) and isinstance(value.get("value"), str):
        value = value["value"]  # a whole env var added or removed: its value
    if isinstance(value, str) and var is not None:
        text = redactor.redact(f"{var}={value}").removeprefix(f"{var}=")
    elif isinstance(value, str):
        text = redactor.redact(value)
    else:
        dumped = json.dumps(_env_redacted(value, redactor), separators=(",", ":"), ensure_ascii=False, default=str)
        text = redactor.redact(dumped)
    return clip(text, VALUE_MAX)


def _env_redacted(value: Any, redactor: Redactor) -> Any:
    """`value` with the values of the env vars inside it (a whole container) redacted by their names."""
    if isinstance(value, list):
        return [_env_redacted(v, redactor) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _env_redacted(v, redactor) for k, v in value.items()}
    if isinstance(value.get("name"), str) and isinstance(value.get("value"), str):
        prefix = f"{value['name']}="
        out["value"] = redactor.redact(prefix + value["value"]).removeprefix(prefix)
    return out
