"""Loki evidence over httpx: the target's pod logs from Loki when the cluster has one configured.

Lines land in `bundle.logs["loki:<pod>/<container>"]`, oldest first, like the pod log tails.
"""

from __future__ import annotations

import httpx

from aiops.diagnosis.collectors import pod_matcher
from aiops.diagnosis.evidence import EvidenceBundle

TIMEOUT_S = 10
LIMIT = 2000


def collect(url: str, bundle: EvidenceBundle, bearer_token: str | None = None, verify: bool = True) -> EvidenceBundle:
    params = {
        "query": "{" + pod_matcher(bundle) + "}",
        "start": str(int(bundle.window_start.timestamp() * 1e9)),
        "end": str(int(bundle.window_end.timestamp() * 1e9)),
        "limit": str(LIMIT),
        "direction": "backward",
    }
    headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
    try:
        resp = httpx.get(
            f"{url.rstrip('/')}/loki/api/v1/query_range",
            params=params,
            headers=headers,
            timeout=TIMEOUT_S,
            verify=verify,
        )
        resp.raise_for_status()
        streams = resp.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        bundle.missing.append(f"loki: {type(exc).__name__}: {str(exc)[:300]}")
        return bundle
    for stream in streams:
        labels = stream.get("stream") or {}
        key = f"loki:{labels.get('pod', '?')}/{labels.get('container', '?')}"
        lines = [line for _, line in sorted(stream.get("values") or [])]
        bundle.logs[key] = bundle.logs.get(key, []) + lines
    return bundle
