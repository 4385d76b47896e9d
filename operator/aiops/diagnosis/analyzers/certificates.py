"""Certificate expiry: cert-manager Certificates expired, expiring within a week or not Ready, and
expired-certificate errors in logs. Other TLS errors in logs are log_signatures' to report."""

from __future__ import annotations

import re
from datetime import timedelta

from aiops.core.status import parse_time
from aiops.diagnosis.analyzers.common import (
    dependency_cause,
    finding,
    item,
    log_item,
    name,
    plural,
    scan_logs,
    workload_resource,
)
from aiops.diagnosis.evidence import EvidenceBundle, Finding

FAILURE_MODES = ("CertificateExpired", "CertificateNotReady", "CertificateExpiringSoon", "TLSCertificateExpired")
SOON = timedelta(days=7)
SCORE_EXPIRED = 0.9  # clients refuse it: direct proof
SCORE_NOT_READY = 0.6  # renewal or issuance fails; +0.1 when it also expires within SOON
SCORE_SOON = 0.45  # still valid; a warning, not a cause
SCORE_LOGS = 0.75  # a peer's certificate has expired (which one is in the line)

# x509 (Go), OpenSSL and Java phrasings of "the certificate's validity period does not cover now"
LOG_EXPIRY = re.compile(
    r"certificate has expired|certificate is not yet valid|tls: expired certificate|certificate expired|"
    r"CertificateExpiredException",
    re.I,
)


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    return _certificates(bundle) + _logs(bundle)


def _certificates(bundle: EvidenceBundle) -> list[Finding]:
    now = bundle.window_end  # the incident's clock, so a replayed bundle gives the same answer
    findings = []
    for cert in bundle.certificates:
        cert_name = name(cert)
        status, spec = cert.get("status") or {}, cert.get("spec") or {}
        not_after = parse_time(status.get("notAfter"))
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        not_ready = ready.get("status") == "False"
        soon = not_after is not None and not_after - now <= SOON
        secret = spec.get("secretName", "?")
        if not_after is not None and not_after <= now:
            mode, score, state = "CertificateExpired", SCORE_EXPIRED, f"expired at {status['notAfter']}"
            fix = (
                f"Renew now: cmctl renew {cert_name} (or delete Secret {secret} to force a reissue), then find why"
                " renewal failed: kubectl describe certificaterequest / order, and the issuer's status."
            )
        elif not_ready:
            mode, score = "CertificateNotReady", SCORE_NOT_READY + (0.1 if soon else 0)
            state = f"not Ready ({ready.get('reason')}: {ready.get('message', '')})"
            fix = (
                f"kubectl describe certificate {cert_name} and its CertificateRequest / Order: the issuer's message"
                " names the failure (ACME challenge, issuer not Ready, DNS, missing Secret)."
            )
        elif soon:
            mode, score, state = "CertificateExpiringSoon", SCORE_SOON, f"expires at {status['notAfter']}"
            fix = (
                f"Check that cert-manager renews {cert_name} (renewalTime {status.get('renewalTime', '?')}) and"
                " that its issuer is Ready; renew by hand (cmctl renew) if renewal is stuck."
            )
        else:
            continue
        summary = (
            f"Certificate/{cert_name} (Secret {secret}, dnsNames {', '.join(spec.get('dnsNames') or []) or '-'}):"
            f" notAfter {status.get('notAfter', '?')}, renewalTime {status.get('renewalTime', '?')},"
            f" Ready={ready.get('status', '?')} {ready.get('reason', '')}: {ready.get('message', '')}"
        )
        findings.append(
            finding(
                f"Certificate/{cert_name}",
                mode,
                score,
                f"Certificate {cert_name} is {state}.",
                fix,
                [item("kubernetes", summary, "cert", cert_name)],
                [dependency_cause(n) for n in spec.get("dnsNames") or []],
            )
        )
    return findings


def _logs(bundle: EvidenceBundle) -> list[Finding]:
    hits = scan_logs(bundle, lambda line: "expired" if LOG_EXPIRY.search(line) else None).get("expired", [])
    if not hits:
        return []
    total = sum(h.count for h in hits)
    return [
        finding(
            workload_resource(bundle, [h.pod for h in hits]),
            "TLSCertificateExpired",
            SCORE_LOGS,
            f"{plural(total, 'log line')} report an expired (or not yet valid) certificate; first: {hits[0].first}",
            "Find the endpoint in the line and renew the certificate it presents (kubectl get certificates -A,"
            " or the external service's owner); if every peer looks expired, check the node's clock.",
            [log_item("cert-log", h, "report an expired certificate") for h in hits],
        )
    ]
