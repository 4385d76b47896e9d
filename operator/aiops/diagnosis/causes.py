"""The causes a diagnosis stands behind: what Incidents on other clusters can be matched on.

The causes (`Suspect.causes`) of the top suspect, and of any other suspect scoring at least CLAIM_SHARE
of it. A cause named only by a weak, lower suspect is not claimed: it would fold unrelated Incidents
together (fleet/correlation.py) and hold notifications for nothing (notify/compose.py).
"""

from __future__ import annotations

from typing import Any

from aiops.api.incident import Cause

CLAIM_SHARE = 0.8


def claims(incident: dict[str, Any]) -> list[Cause]:
    suspects = ((incident.get("status") or {}).get("diagnosis") or {}).get("suspects") or []
    if not suspects:
        return []
    top = max(float(s.get("score") or 0) for s in suspects)
    found: dict[tuple[str, str], Cause] = {}
    for s in suspects:
        if float(s.get("score") or 0) >= CLAIM_SHARE * top:
            for c in s.get("causes") or []:
                cause = Cause.model_validate(c)
                found.setdefault((cause.kind, cause.value), cause)
    return list(found.values())
