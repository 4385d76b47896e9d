"""Runbooks into the cluster: create each SOP, or replace its spec when the markdown changed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from kubernetes import config
from kubernetes.client.exceptions import ApiException

from aiops import GROUP, VERSION
from aiops.api import SOP
from aiops.core import kube
from aiops.sops import sopfile


def current_namespace() -> str:
    """The namespace of the kubeconfig's current context, or `default`."""
    try:
        _, active = config.list_kube_config_contexts(config_file=os.environ.get("KUBECONFIG"))
    except config.ConfigException:
        return "default"
    return active["context"].get("namespace") or "default"


def apply(
    runbooks: list[tuple[Path, sopfile.Runbook]], namespace: str | None, dry_run: bool = False
) -> Iterator[tuple[str, bool]]:
    """Per runbook, a line saying what happened to its SOP and whether that went well.

    Without a namespace the kubeconfig context's is used; a dry run contacts no cluster.
    """
    namespace = namespace or (None if dry_run else current_namespace())
    for path, runbook in runbooks:
        body = sopfile.manifest(runbook, namespace)
        name = f"sop.{GROUP}/{runbook.name}"
        if dry_run:
            yield f"{name} from {path} ({len(runbook.spec.steps)} steps): dry run, not sent", True
            continue
        try:
            obj, created = kube.create(SOP, body)
            if created:
                result = "created"
            elif obj.get("spec") == body["spec"]:
                result = "unchanged"
            else:  # the whole spec, so that fields the markdown dropped go too
                patch = [{"op": "replace", "path": "/spec", "value": body["spec"]}]
                kube.custom().patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, SOP.plural, runbook.name, patch,
                    _content_type="application/json-patch+json",
                )  # fmt: skip
                result = "configured"
        except ApiException as exc:
            yield f"{name} failed: {exc.status} {exc.reason}", False
            continue
        yield f"{name} {result}", True
