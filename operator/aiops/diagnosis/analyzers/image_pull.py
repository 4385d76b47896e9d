"""Image pull failures, told apart by cause: credentials, a missing image, an unreachable registry,
or a malformed reference. The kubelet's waiting message and its "Failed" events carry the cause."""

from __future__ import annotations

import re

from aiops.diagnosis.analyzers.common import (
    container_statuses,
    dependency_cause,
    event_item,
    events_for,
    finding,
    image_cause,
    item,
    name,
    registry_host,
    workload_resource,
)
from aiops.diagnosis.evidence import EvidenceBundle, Finding

FAILURE_MODES = ("ImagePullAuthError", "ImageNotFound", "RegistryUnreachable", "InvalidImageName", "ImagePullError")
SCORE = 0.9  # the cause is in the runtime's own error
SCORE_UNCLASSIFIED = 0.75  # pulls fail, the message does not say why

PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}

# Checked in order: a denied pull often also says "repository does not exist", which is the registry
# hiding a private repository from an anonymous client, so credentials come first.
CAUSES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "ImagePullAuthError",
        re.compile(
            r"unauthorized|authentication required|pull access denied|insufficient_scope|denied|"
            r"\b40[13]\b|forbidden",
            re.I,
        ),
        "Check the pod's imagePullSecrets (and the ServiceAccount's) against the registry: the secret must exist"
        " in the namespace, hold a valid token for {registry}, and not be expired.",
    ),
    (
        "RegistryUnreachable",
        re.compile(
            r"no such host|i/o timeout|connection refused|dial tcp|network is unreachable|"
            r"TLS handshake timeout|context deadline exceeded|x509|server misbehaving",
            re.I,
        ),
        "Check that the nodes can resolve and reach {registry} (DNS, egress firewall, proxy, registry CA);"
        " a mirror or pre-pulled image keeps pods starting meanwhile.",
    ),
    (
        "ImageNotFound",
        re.compile(r"not found|manifest unknown|name unknown|\b404\b", re.I),
        "The image {image} does not exist: fix the tag or digest (a typo or a push that never happened),"
        " or roll back to the previous image.",
    ),
)
DESCRIPTIONS = {
    "ImagePullAuthError": "the registry refused the credentials (or there were none)",
    "RegistryUnreachable": "the registry could not be reached",
    "ImageNotFound": "the registry has no such image or tag",
    "InvalidImageName": "the image reference is malformed",
    "ImagePullError": "the pull fails for a reason the message does not name",
}
INVALID_MITIGATION = "Fix the image reference {image}: lowercase repository, valid tag or digest."
UNCLASSIFIED_MITIGATION = "Pull {image} by hand from a node (crictl pull) to see the registry's answer."


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    # (failure mode, image) -> pods and evidence; replicas of one workload fail the same way
    groups: dict[tuple[str, str], tuple[list[str], list]] = {}
    pull_events = events_for(bundle, {"Failed", "ErrImagePull", "BackOff", "InspectFailed"}, kind="Pod")
    for pod in bundle.pods:
        pod_name = name(pod)
        for status in container_statuses(pod):
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") not in PULL_REASONS:
                continue
            image = status.get("image") or "?"
            related = [
                e
                for e in pull_events
                if e["involvedObject"].get("name") == pod_name and "image" in (e.get("message") or "").lower()
            ]
            messages = " ".join([waiting.get("message") or ""] + [e.get("message") or "" for e in related])
            mode = _classify(waiting["reason"], messages)
            pods, evidence = groups.setdefault((mode, image), ([], []))
            pods.append(pod_name)
            evidence.append(
                item(
                    "kubernetes",
                    f"Pod/{pod_name} container {status['name']}: waiting {waiting['reason']}:"
                    f" {waiting.get('message', '')} (image {image})",
                    "imagepull",
                    pod_name,
                    status["name"],
                )
            )
            evidence.extend(event_item("imagepull-event", e) for e in related if e.get("type") == "Warning")
    findings = []
    for (mode, image), (pods, evidence) in groups.items():
        findings.append(
            finding(
                workload_resource(bundle, pods),
                mode,
                SCORE_UNCLASSIFIED if mode == "ImagePullError" else SCORE,
                f"{len(pods)} pod(s) cannot pull {image}: {DESCRIPTIONS[mode]}.",
                _mitigation(mode, image),
                evidence,
                [image_cause(image), dependency_cause(registry_host(image))],
            )
        )
    return findings


def _classify(reason: str, messages: str) -> str:
    if reason == "InvalidImageName":
        return "InvalidImageName"
    for mode, pattern, _ in CAUSES:
        if pattern.search(messages):
            return mode
    return "ImagePullError"


def _mitigation(mode: str, image: str) -> str:
    # Docker's rule: the first path part is a registry host only if it looks like one.
    first = image.split("/")[0]
    registry = first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"
    template = {m: text for m, _, text in CAUSES}.get(mode) or (
        INVALID_MITIGATION if mode == "InvalidImageName" else UNCLASSIFIED_MITIGATION
    )
    return template.format(image=image, registry=registry)
