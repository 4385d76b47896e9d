from aiops.diagnosis.analyzers import certificates, log_signatures

from .objects import bundle

DNS = [
    '2024-05-01T10:05:01.113Z level=error msg="query failed" err="dial tcp: lookup postgres.shop.svc.cluster.local'
    ' on 10.96.0.10:53: no such host"',
    "2024-05-01T10:05:03.001Z getaddrinfo: Temporary failure in name resolution",
    "2024-05-01T10:05:04.001Z dial udp 10.96.0.10:53: i/o timeout",
]
REFUSED = "2024-05-01T10:06:00.000Z redis: dial tcp 10.0.3.4:6379: connect: connection refused"
TLS = "2024-05-01T10:07:00.000Z http: TLS handshake error: x509: certificate signed by unknown authority"
EXPIRED = (
    '2024-05-01T10:08:00.000Z Get "https://payments.shop.svc:8443/charge": x509: certificate has expired or is not'
    " yet valid: current time 2024-05-01T10:08:00Z is after 2024-04-30T23:59:59Z"
)


def test_signatures_are_grouped_with_counts_and_first_line():
    logs = {"checkout-a/app": ["started", *DNS, REFUSED, REFUSED, TLS], "checkout-b/app": [DNS[0]]}
    found = {f.suspect.failure_mode: f for f in log_signatures.analyze(bundle(logs=logs))}
    assert set(found) == {"DNSResolutionFailure", "ConnectionRefused", "TLSError"}
    dns = found["DNSResolutionFailure"]
    assert dns.suspect.resource == "Deployment/checkout"  # two pods
    assert "4 log lines in 2 containers" in dns.suspect.reason
    assert dns.suspect.evidence == [
        "log-dnsresolutionfailure-checkout-a-app",
        "log-dnsresolutionfailure-checkout-b-app",
    ]
    assert "3 lines" in dns.evidence[0].summary and "postgres.shop.svc" in dns.evidence[0].summary
    assert round(dns.suspect.score, 3) == 0.604  # 0.6 + 0.1 x 4/100
    refused = found["ConnectionRefused"].suspect
    assert refused.resource == "Pod/checkout-a" and "2 log lines" in refused.reason


def test_score_saturates_with_many_lines():
    [f] = log_signatures.analyze(bundle(logs={"a/app": [REFUSED] * 500}))
    assert f.suspect.score == 0.6


def test_expired_certificates_are_counted_once_by_certificates():
    logs = {"checkout-a/app": [EXPIRED, EXPIRED, TLS]}
    [tls] = log_signatures.analyze(bundle(logs=logs))
    assert tls.suspect.failure_mode == "TLSError" and "1 log line " in tls.suspect.reason
    [expired] = certificates.analyze(bundle(logs=logs))
    assert expired.suspect.failure_mode == "TLSCertificateExpired" and "2 log lines" in expired.suspect.reason


def test_clean_and_empty_logs_give_nothing():
    assert log_signatures.analyze(bundle(logs={"a/app": ["GET /healthz 200", ""], "b/app": []})) == []


def test_the_host_a_failing_line_names_is_a_dependency_cause():
    logs = {"checkout-a/app": [DNS[0]], "checkout-b/app": ["getaddrinfo ENOTFOUND api.payments.example.com"]}
    [dns] = log_signatures.analyze(bundle(logs=logs))
    assert sorted(c.value for c in dns.suspect.causes) == [
        "api.payments.example.com",
        "postgres.shop.svc.cluster.local",
    ]
    assert {c.kind for c in dns.suspect.causes} == {"dependency"}
    [refused] = log_signatures.analyze(bundle(logs={"checkout-a/app": [REFUSED]}))
    assert refused.suspect.causes == []  # an IP and port name no host to share
