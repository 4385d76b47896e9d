"""Known failure signatures in logs: DNS resolution failures, refused connections and TLS errors,
grouped per signature with counts and the first matching line. Expired certificates are
certificates.py's, so a line is counted by one analyzer only."""

from __future__ import annotations

import re

from aiops.diagnosis.analyzers.certificates import LOG_EXPIRY
from aiops.diagnosis.analyzers.common import dependency_cause, finding, log_item, plural, scan_logs, workload_resource
from aiops.diagnosis.evidence import EvidenceBundle, Finding

FAILURE_MODES = ("DNSResolutionFailure", "TLSError", "ConnectionRefused")
# Base score, plus up to COUNT_BONUS as the matching lines approach COUNT_SATURATION.
COUNT_BONUS, COUNT_SATURATION = 0.1, 100

# mode -> (pattern, base score, what to do); checked in this order, first match wins, so an
# i/o timeout talking to port 53 counts as DNS and not as something else.
SIGNATURES: dict[str, tuple[re.Pattern[str], float, str]] = {
    "DNSResolutionFailure": (
        re.compile(
            r"no such host|Temporary failure in name resolution|NXDOMAIN|Name or service not known|"
            r"server misbehaving|:53\b.*i/o timeout|i/o timeout.*:53\b|ENOTFOUND|Could not resolve host|"
            r"UnknownHostException",
            re.I,
        ),
        0.6,
        "Check CoreDNS (kubectl -n kube-system get pods -l k8s-app=kube-dns, and its logs) and the name the app"
        " resolves: a typo, the wrong namespace, a deleted Service. NetworkPolicies must allow egress to port 53"
        " over UDP and TCP.",
    ),
    "TLSError": (
        re.compile(
            r"x509:|tls: |certificate verify failed|handshake failure|bad certificate|unknown authority|SSL routines",
            re.I,
        ),
        0.6,
        "Compare the CA bundle the client trusts with the server's issuer (a rotated CA, a missing intermediate,"
        " a hostname missing from the SAN) and mount the right CA or reissue the certificate.",
    ),
    "ConnectionRefused": (
        re.compile(r"connection refused|ECONNREFUSED", re.I),
        0.5,
        "Nothing listens at the peer: check that its pods are ready and its Service has endpoints (kubectl get"
        " endpointslices), and that the port matches.",
    ),
}


# The peer a failing line names, in the wordings of Go, glibc, Node, curl and Java resolvers and TLS stacks.
HOST = re.compile(
    r"(?:lookup|ENOTFOUND|resolve host:?|resolve '|UnknownHostException:|certificate is valid for [^,]+, not)"
    r"\s*([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)",
    re.I,
)


def classify(line: str) -> str | None:
    if LOG_EXPIRY.search(line):
        return None
    return next((mode for mode, (pattern, _, _) in SIGNATURES.items() if pattern.search(line)), None)


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    findings = []
    for mode, hits in scan_logs(bundle, classify).items():
        _, base, fix = SIGNATURES[mode]
        total = sum(h.count for h in hits)
        findings.append(
            finding(
                workload_resource(bundle, [h.pod for h in hits]),
                mode,
                base + COUNT_BONUS * min(1.0, total / COUNT_SATURATION),
                f"{plural(total, 'log line')} in {plural(len(hits), 'container')} match {mode}; first: {hits[0].first}",
                fix,
                [log_item(f"log-{mode}", h, f"match {mode}") for h in hits],
                [dependency_cause(host) for h in hits for host in HOST.findall(h.first)],
            )
        )
    return findings
