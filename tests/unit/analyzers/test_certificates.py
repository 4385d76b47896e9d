from aiops.diagnosis.analyzers import certificates

from .objects import bundle, certificate, condition

DAY = 24 * 60  # minutes
WINDOW_END = 60  # minutes after window start


def test_expired_certificate():
    [f] = certificates.analyze(bundle(certificates=[certificate(not_after=30)]))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("Certificate/checkout-tls", "CertificateExpired", 0.9)
    assert "cmctl renew checkout-tls" in s.mitigation
    assert s.evidence == ["cert-checkout-tls"]


def test_not_ready_scores_higher_when_expiry_is_near():
    failing = condition("Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist")
    near = certificate("near", not_after=WINDOW_END + 2 * DAY, ready=dict(failing))
    far = certificate("far", not_after=WINDOW_END + 40 * DAY, ready=dict(failing))
    found = {f.suspect.resource: f.suspect for f in certificates.analyze(bundle(certificates=[near, far]))}
    assert found["Certificate/near"].failure_mode == found["Certificate/far"].failure_mode == "CertificateNotReady"
    assert (found["Certificate/near"].score, found["Certificate/far"].score) == (0.7, 0.6)
    assert "Secret does not exist" in found["Certificate/far"].reason


def test_expiring_within_a_week_is_a_weak_warning():
    [f] = certificates.analyze(bundle(certificates=[certificate(not_after=WINDOW_END + 6 * DAY)]))
    assert (f.suspect.failure_mode, f.suspect.score) == ("CertificateExpiringSoon", 0.45)


def test_healthy_and_unissued_certificates_give_nothing():
    unissued = certificate("new")
    unissued["status"] = {}
    assert certificates.analyze(bundle(certificates=[certificate(), unissued])) == []
