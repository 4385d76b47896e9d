import pytest

from aiops.diagnosis.analyzers.common import evidence_id, finding, item, scan_logs

from .objects import bundle


def test_evidence_id_is_a_readable_slug():
    assert evidence_id("oom", "checkout-7d9f-x2kqz", "App") == "oom-checkout-7d9f-x2kqz-app"
    assert evidence_id("log", "DNS.Resolution Failure", "a/b") == "log-dns-resolution-failure-a-b"


def test_long_evidence_ids_are_cut_with_a_hash_that_keeps_them_apart():
    a = evidence_id("unschedulable", "x" * 80, "one")
    b = evidence_id("unschedulable", "x" * 80, "two")
    assert len(a) == len(b) == 64
    assert a != b
    assert a == evidence_id("unschedulable", "x" * 80, "one")  # deterministic
    item("events", "valid as an EvidenceItem id", "unschedulable", "x" * 80, "one")


def test_a_finding_cites_its_evidence_and_refuses_none():
    f = finding("Pod/a", "OOMKilled", 1.7, "r", "m", [item("kubernetes", "s", "x"), item("kubernetes", "s2", "x")])
    assert f.suspect.evidence == ["x"]  # duplicate ids collapse
    assert f.suspect.score == 1.0  # clamped into the model's range
    with pytest.raises(ValueError):
        finding("Pod/a", "OOMKilled", 0.9, "r", "m", [])


def test_scan_logs_keeps_the_larger_count_when_kubelet_and_loki_hold_the_same_stream():
    b = bundle(
        logs={
            "web-1/app": ["ok", "boom 1", "boom 2"],
            "loki:web-1/app": ["boom 1", "boom 2", "boom 3"],
            "web-2/app": ["fine"],
        }
    )
    hits = scan_logs(b, lambda line: "boom" if "boom" in line else None)
    assert [(h.pod, h.container, h.count, h.first) for h in hits["boom"]] == [("web-1", "app", 3, "boom 1")]
