"""An SOP (runbook) as documents of the index: one per step, keyed namespace/name#step-id, each carrying the
runbook's title, description and symptoms so that a step is found by the situation it is for."""

from __future__ import annotations

from aiops.knowledge.index import Document


def documents(namespace: str, name: str, spec: dict) -> list[Document]:
    title = spec.get("title") or name
    match = spec.get("match") or {}
    context = "\n".join(
        part
        for part in (
            spec.get("description") or "",
            "Symptoms: " + ", ".join(match.get("symptoms") or []) if match.get("symptoms") else "",
            "Alerts: " + ", ".join(match.get("alertNames") or []) if match.get("alertNames") else "",
        )
        if part
    )
    docs = []
    for step in spec.get("steps") or []:
        body = "\n".join(
            str(step[f]) for f in ("title", "instructions", "command", "promql") if step.get(f)
        )  # fmt: skip
        docs.append(
            Document(
                kind="sop-step",
                key=f"{namespace}/{name}#{step.get('id')}",
                title=title,
                text=f"{body}\n{context}".strip(),
                meta={"sop": f"{namespace}/{name}", "step": step.get("id"), "type": step.get("type")},
            )
        )
    return docs
