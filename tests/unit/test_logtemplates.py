"""summarize() turns Kubernetes and application logs into templates with counts and times."""

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from aiops.diagnosis.logtemplates import OTHER, summarize

READ_AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _pod(rng: random.Random, name: str) -> str:
    suffix = "".join(rng.choices(K8S_ALPHABET, k=5))
    return f"{name}-{''.join(rng.choices(K8S_ALPHABET, k=10))}-{suffix}"


def _ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _klog(severity: str, at: datetime, source: str, message: str) -> str:
    return f"{severity}{at:%m%d %H:%M:%S.%f} {2417:>7} {source}] {message}"


def _app(level: str, at: datetime, message: str) -> str:
    return f"{at:%Y-%m-%dT%H:%M:%S.%f}Z {level:<5} {message}"


def _probe(rng, at):
    pod, uid, ip = _pod(rng, "cart"), uuid.UUID(int=rng.getrandbits(128)), _ip(rng)
    return _klog(
        "W",
        at,
        "prober.go:107",
        f'"Probe failed" probeType="Readiness" pod="shop/{pod}" podUID="{uid}" containerName="cart" '
        f'probeResult="failure" output="Get \\"http://{ip}:8080/healthz\\": context deadline exceeded"',
    )


def _crashloop(rng, at):
    pod, uid = _pod(rng, "checkout"), uuid.UUID(int=rng.getrandbits(128))
    backoff = rng.choice(["10s", "20s", "40s", "1m20s", "2m40s", "5m0s"])
    return _klog(
        "E",
        at,
        "pod_workers.go:1298",
        f'"Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"checkout\\" with '
        f'CrashLoopBackOff: \\"back-off {backoff} restarting failed container=checkout pod={pod}_shop({uid})\\"" '
        f'pod="shop/{pod}" podUID="{uid}"',
    )


def _request(rng, at):
    return _app(
        "INFO",
        at,
        f"GET /api/v1/orders/{rng.randrange(1, 10**6)} status={rng.choice([200, 200, 200, 404])} "
        f"duration={rng.uniform(0.5, 900):.1f}ms client={_ip(rng)}:{rng.randrange(1024, 65536)}",
    )


def _database(rng, at):
    return _app(
        "ERROR",
        at,
        f"connection to postgres at {_ip(rng)}:5432 failed: timeout after {rng.choice([5, 10, 30])}s "
        f"(attempt {rng.randrange(1, 6)} of 5)",
    )


def _slow_query(rng, at):
    took, trace = f"{rng.randrange(1, 9)}.{rng.randrange(10)}s", f"{rng.getrandbits(128):032x}"
    return _app("WARN", at, f"slow query took {took} trace_id={trace}")


# Kind, how many lines, and the template a reader should see.
KINDS = [
    (
        _probe,
        200,
        '"Probe failed" probeType="Readiness" pod="shop/<*>" podUID="<*>" containerName="cart" '
        'probeResult="failure" output="Get \\"http://<*>/healthz\\": context deadline exceeded"',
    ),
    (
        _crashloop,
        140,
        '"Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"checkout\\" with '
        'CrashLoopBackOff: \\"back-off <*> restarting failed container=checkout pod=<*>_shop(<*>)\\"" '
        'pod="shop/<*>" podUID="<*>"',
    ),
    (_request, 90, "GET /api/v1/orders/<*> status=<*> duration=<*> client=<*>"),
    (_database, 50, "connection to postgres at <*> failed: timeout after <*> (attempt <*> of <*>)"),
    (_slow_query, 20, "slow query took <*> trace_id=<*>"),
]


def _pod_logs(seed: int):
    """500 interleaved lines from the five kinds, 0.05 to 2 s apart; also each
    line's kind and time."""
    rng = random.Random(seed)
    kinds = [index for index, (_, count, _) in enumerate(KINDS) for _ in range(count)]
    rng.shuffle(kinds)
    at = datetime(2026, 11, 23, 14, 7, tzinfo=UTC)
    lines, times = [], []
    for kind in kinds:
        at += timedelta(microseconds=rng.randrange(50_000, 2_000_000))
        lines.append(KINDS[kind][0](rng, at))
        times.append(at)
    return lines, kinds, times


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kubelet_and_application_lines_group_into_their_templates(seed):
    lines, kinds, times = _pod_logs(seed)
    summary = summarize(lines, reference=READ_AT)

    assert [t.template for t in summary] == [template for _, _, template in KINDS]
    for entry, (kind, (_, count, _)) in zip(summary, enumerate(KINDS), strict=True):
        indices = [i for i, k in enumerate(kinds) if k == kind]
        assert entry.count == count
        assert (entry.first_index, entry.last_index) == (indices[0], indices[-1])
        assert (entry.first_seen, entry.last_seen) == (times[indices[0]], times[indices[-1]])
        assert entry.example == lines[indices[0]]


def test_templates_beyond_the_limit_are_pooled_and_ties_keep_input_order():
    lines = [
        "listening on 10.0.3.7:8443",  # 0
        "flushed 17 metrics to the backend",  # 1
        "starting worker pool with 8 workers",  # 2
        "flushed 3 metrics to the backend",  # 3
        "received SIGTERM, draining open connections",  # 4
        "starting worker pool with 16 workers",  # 5
        "flushed 250 metrics to the backend",  # 6
        "cache warmed up with 9000 entries",  # 7
        "starting worker pool with 4 workers",  # 8
        "listening on 10.0.3.9:8443",  # 9
        "shutdown complete",  # 10
        "listening on 10.0.4.1:8443",  # 11
    ]
    summary = summarize(lines, max_templates=4)

    assert [(t.template, t.count) for t in summary] == [
        ("listening on <*>", 3),  # three lines each: first to appear comes first
        ("flushed <*> metrics to the backend", 3),
        ("starting worker pool with <*> workers", 3),
        (OTHER, 3),
    ]
    other = summary[-1]
    assert (other.first_index, other.last_index, other.example) == (4, 10, lines[4])
    assert sum(t.count for t in summary) == len(lines)
    assert all(t.first_seen is None and t.last_seen is None for t in summary), "no line carries a timestamp"

    assert len(summarize(lines, max_templates=6)) == 6, "exactly as many templates as allowed: no pooling"
    (pooled,) = summarize(lines, max_templates=1)
    assert (pooled.template, pooled.count, pooled.first_index, pooled.last_index) == (OTHER, len(lines), 0, 11)


def test_yearless_timestamps_take_the_year_that_is_not_in_the_future():
    lines = [
        "I1231 23:59:58.250000       1 leaderelection.go:281] successfully renewed lease kube-system/kube-scheduler",
        "I0101 00:00:03.750000       1 leaderelection.go:281] successfully renewed lease kube-system/kube-scheduler",
        "Jan  1 00:05:00 node-1 kubelet[812]: successfully renewed lease kube-system/kube-scheduler",
    ]
    (klog, syslog) = summarize(lines, reference=datetime(2027, 1, 1, 0, 10, tzinfo=UTC))

    assert klog.template == "successfully renewed lease kube-system/kube-scheduler" and klog.count == 2
    assert klog.first_seen == datetime(2026, 12, 31, 23, 59, 58, 250000, tzinfo=UTC)
    assert klog.last_seen == datetime(2027, 1, 1, 0, 0, 3, 750000, tzinfo=UTC)
    assert syslog.first_seen == datetime(2027, 1, 1, 0, 5, tzinfo=UTC)


def test_container_runtime_timestamp_wins_over_the_applications_own():
    # `kubectl logs --timestamps` prefixes the runtime's RFC 3339 time, in UTC; the application's
    # own stamp follows, here in another zone, and is stripped as well.
    lines = [
        "2026-11-23T14:07:00.500000000Z 2026-11-23 15:07:00,499+01:00 INFO [main] config reloaded",
        "2026-11-23T14:08:00.000000000Z 2026-11-23 15:08:00,000+01:00 INFO [main] config reloaded",
    ]
    (entry,) = summarize(lines)
    assert entry.template == "[main] config reloaded"
    assert entry.first_seen == datetime(2026, 11, 23, 14, 7, 0, 500000, tzinfo=UTC)
    assert entry.last_seen == datetime(2026, 11, 23, 14, 8, tzinfo=UTC)


def test_empty_input_and_a_limit_below_one():
    assert summarize([]) == []
    with pytest.raises(ValueError, match="max_templates"):
        summarize(["a line"], max_templates=0)
