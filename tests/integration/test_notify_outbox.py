"""The notifications outbox in a real PostgreSQL, delivered through the real channels to real receivers on
loopback (tests/support/receivers.py): idempotent enqueue, claims no two senders share, a sender that died
mid-send, Retry-After, dead letters and `aiops notifications`, Slack updated in place, a hanging channel
beside a healthy one, and the figure: 1,000 Incidents' notices through a receiver that fails 30% of requests,
none lost and none duplicated.

The workers here run with short backoffs (constructor parameters); the code's defaults are 1 s to 5 min."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import time
from contextlib import asynccontextmanager

from aiops.cli import main as cli
from aiops.notify import outbox
from aiops.notify.channels import SlackConfig, WebhookConfig, build
from aiops.notify.delivery import Delivery, Worker
from aiops.notify.notice import Notice, Stage
from support.receivers import CloudEventsReceiver, Reply, SlackApi, scripted

FAST = {"backoff_base_s": 0.05, "backoff_cap_s": 1.0, "poll_s": 0.1, "gauge_interval_s": 0.5}


def notice(i: int, stage: Stage = Stage.DIAGNOSED, detail: str = "") -> Notice:
    return Notice(
        incident=f"shop/incident-{i}",
        uid=f"uid-{i:05d}",
        stage=stage,
        detail=detail,
        title=f"checkout {i} is failing",
        severity="critical",
        cluster="local",
        namespace="shop",
        root_cause="the payments Deployment's new image crashes on start",
        confidence=80,
        evidence=["Pod/payments-7d9 CrashLoopBackOff, 12 restarts"],
        at="2026-01-02T03:04:05Z",
    )


def webhook(name: str, url: str, timeout_s: float = 5.0, rate_per_minute: int = 100_000):
    """The real CloudEvents channel; its URL, a secret, comes from an environment variable as configured."""
    var = f"AIOPS_TEST_NOTIFY_{name.upper().replace('-', '_')}_URL"
    os.environ[var] = url
    return build(
        WebhookConfig(name=name, type="webhook", url={"env": var}, rate_per_minute=rate_per_minute, timeout_s=timeout_s)
    )


class TimedReceiver(CloudEventsReceiver):
    """The CloudEvents sink, noting when each event id was first accepted (time.monotonic)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted_at: dict[str, float] = {}

    def _answer(self, request):
        reply = super()._answer(request)
        if reply.status == 202:
            accepted = reply.body["accepted"]
            with self.lock:
                self.accepted_at.setdefault(accepted, time.monotonic())
        return reply


@asynccontextmanager
async def workers(dsn: str, make_channels, count: int = 1, **options):
    """`count` workers, each with a pool of its own as separate operator processes would have, running."""
    pools = [await outbox.open_pool(dsn, max_size=6) for _ in range(count)]
    stop = asyncio.Event()
    running = [Worker(pool, make_channels(), **{**FAST, **options}) for pool in pools]
    tasks = [asyncio.create_task(w.run(stop)) for w in running]
    try:
        yield running
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for pool in pools:
            await pool.close()


async def settled(pool, timeout: float) -> None:
    """Until no row is pending or being sent."""
    deadline = time.monotonic() + timeout
    while await outbox.pending(pool):
        assert time.monotonic() < deadline, f"{await outbox.pending(pool)} notification(s) still pending"
        await asyncio.sleep(0.05)


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.02)


async def rows(pool, sql: str = "SELECT * FROM notification_outbox ORDER BY id", *args) -> list[dict]:
    return [dict(r) for r in await pool.fetch(sql, *args)]


# The figures: also run by tests/bench/bench_notify.py


async def lossless(dsn: str, notices: int = 1000, fail_ratio: float = 0.3, count: int = 2, seed: int = 7) -> dict:
    """`notices` Incidents' notices through `count` workers to a receiver failing `fail_ratio` of requests."""
    with TimedReceiver(fail_ratio=fail_ratio, seed=seed) as receiver:
        pool = await outbox.open_pool(dsn)
        try:
            # 20 attempts: a notice refused 20 times in a row at 30% (p = 3.5e-12) would be a dead letter.
            async with workers(dsn, lambda: [webhook("sink", receiver.url)], count, max_attempts=20):
                started = time.monotonic()
                keys = [n.key for n in map(notice, range(notices))]
                for i in range(notices):
                    assert await outbox.enqueue(pool, notice(i), ["sink"]) == ["sink"]
                await settled(pool, timeout=120)
                elapsed = time.monotonic() - started
            dead = await outbox.listing(pool, ("dead",))
            attempts = await pool.fetchval("SELECT sum(attempts) FROM notification_outbox")
        finally:
            await pool.close()
    return {
        "notices": notices,
        "lost": len(set(keys) - set(receiver.events)),
        "duplicated": receiver.duplicates,
        "dead": len(dead),
        "refused": dict(receiver.refused),
        "attempts": attempts,
        "seconds": elapsed,
    }


async def latency(dsn: str, notices: int = 300, rate: float = 100.0, count: int = 1) -> list[float]:
    """Seconds from enqueue to the receiver's acceptance of each notice, enqueued at `rate` a second to a
    healthy receiver (open loop: each notice's time is its due time, not when the enqueue got round to it)."""
    with TimedReceiver() as receiver:
        pool = await outbox.open_pool(dsn)
        try:
            # polling every 5 s: what is delivered sooner was woken by the enqueue's NOTIFY
            async with workers(dsn, lambda: [webhook("sink", receiver.url)], count, poll_s=5.0):
                start = time.monotonic()
                due = {}
                for i in range(notices):
                    n = notice(i)
                    due[n.key] = start + i / rate
                    await asyncio.sleep(max(0.0, due[n.key] - time.monotonic()))
                    await outbox.enqueue(pool, n, ["sink"])
                await until(lambda: len(receiver.accepted_at) == notices, 60, "every notice accepted")
        finally:
            await pool.close()
    return [receiver.accepted_at[key] - t for key, t in due.items()]


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


# enqueue and claim


def test_enqueue_twice_changes_nothing(dsn):
    async def run():
        pool = await outbox.open_pool(dsn)
        try:
            first = await outbox.enqueue(pool, notice(1), ["oncall", "audit", "oncall"])
            again = await outbox.enqueue(pool, notice(1), ["oncall", "audit"])
            widened = await outbox.enqueue(pool, notice(1), ["oncall", "ops"])
            other_stage = await outbox.enqueue(pool, notice(1, Stage.RESOLVED), ["oncall"])
            return first, again, widened, other_stage, await rows(pool)
        finally:
            await pool.close()

    first, again, widened, other_stage, table = asyncio.run(run())
    assert first == ["oncall", "audit"] and again == [] and widened == ["ops"] and other_stage == ["oncall"]
    assert [(r["channel"], r["notice_key"], r["state"], r["attempts"]) for r in table] == [
        ("oncall", "uid-00001:diagnosed", "pending", 0),
        ("audit", "uid-00001:diagnosed", "pending", 0),
        ("ops", "uid-00001:diagnosed", "pending", 0),
        ("oncall", "uid-00001:resolved", "pending", 0),
    ]
    assert Notice.model_validate_json(table[0]["payload"]) == notice(1), "the payload is the Notice"


def test_two_senders_never_claim_the_same_row(dsn):
    async def run():
        pools = [await outbox.open_pool(dsn, max_size=4) for _ in range(2)]
        try:
            for i in range(400):
                await outbox.enqueue(pools[0], notice(i), ["hook"])

            async def sender(pool) -> list[int]:
                got: list[int] = []
                while batch := await outbox.claim(pool, "hook", 7, lease_s=60):
                    got += [row.id for row in batch]
                    await asyncio.gather(*(outbox.mark_sent(pool, row, None) for row in batch))
                return got

            return await asyncio.gather(*(sender(p) for p in pools for _ in range(3)))
        finally:
            for pool in pools:
                await pool.close()

    claims = asyncio.run(run())
    every = [i for c in claims for i in c]
    assert len(every) == len(set(every)) == 400, "each row claimed exactly once"
    assert sum(1 for c in claims if c) >= 2, "the senders did share the work"


def test_a_row_left_sending_by_a_dead_sender_is_sent_when_its_lease_ends(dsn):
    async def run():
        with TimedReceiver() as receiver:
            pool = await outbox.open_pool(dsn)
            try:
                await outbox.enqueue(pool, notice(1), ["sink"])
                # a sender claims it, then dies before sending
                [dead_claim] = await outbox.claim(pool, "sink", 10, lease_s=0.5)
                worker = Worker(pool, [webhook("sink", receiver.url)], lease_s=5, send_timeout_s=2, **FAST)
                during_lease = await worker.deliver_due()
                await asyncio.sleep(0.6)
                after_lease = await worker.deliver_due()
                late = await outbox.mark_retry(pool, dead_claim, "the dead sender's late word", 1)
                return dead_claim, during_lease, after_lease, late, await rows(pool), dict(receiver.events)
            finally:
                await pool.close()

    dead_claim, during_lease, after_lease, late, table, events = asyncio.run(run())
    assert dead_claim.attempts == 1 and during_lease == []
    assert [(d.state, d.attempts) for d in after_lease] == [("sent", 2)]
    assert late is False, "a lapsed claim cannot overwrite the outcome of the claim after it"
    assert table[0]["state"] == "sent" and table[0]["attempts"] == 2 and list(events) == ["uid-00001:diagnosed"]


def test_a_channels_rate_limit_holds_back_its_claims_not_other_channels(dsn):
    async def run():
        with TimedReceiver() as receiver:
            pool = await outbox.open_pool(dsn)
            try:
                for i in range(3):
                    await outbox.enqueue(pool, notice(i), ["slow", "fast"])
                channels = [webhook("slow", receiver.url, rate_per_minute=60), webhook("fast", receiver.url)]
                worker = Worker(pool, channels, **FAST)
                steps = []
                for pause in (0, 0, 1.05):
                    await asyncio.sleep(pause)
                    steps.append(sorted(d.channel for d in await worker.deliver_due()))
                return steps, await rows(pool, "SELECT channel, state FROM notification_outbox WHERE state <> 'sent'")
            finally:
                await pool.close()

    steps, unsent = asyncio.run(run())
    # 60 a minute: one at once, the next a second later; the rows it could not take stay unclaimed
    assert steps == [["fast", "fast", "fast", "slow"], [], ["slow"]]
    assert unsent == [{"channel": "slow", "state": "pending"}]


# outcomes


def test_retry_after_is_honoured(dsn):
    async def run():
        with scripted(Reply(429, {"error": "slow down"}, {"Retry-After": "2"}), Reply(202)) as receiver:
            pool = await outbox.open_pool(dsn)
            try:
                await outbox.enqueue(pool, notice(1), ["hook"])
                worker = Worker(pool, [webhook("hook", receiver.url)], **FAST)
                first = await worker.deliver_due()
                wait = await pool.fetchval(
                    "SELECT extract(epoch FROM next_attempt_at - now()) FROM notification_outbox"
                )
                await asyncio.sleep(1.0)
                early = await worker.deliver_due()
                await asyncio.sleep(1.1)
                second = await worker.deliver_due()
                return first, float(wait), early, second, len(receiver.requests)
            finally:
                await pool.close()

    first, wait, early, second, requests = asyncio.run(run())
    assert [(d.state, d.attempts, d.error) for d in first] == [("pending", 1, 'hook: HTTP 429: {"error": "slow down"}')]
    assert 1.9 < wait <= 2.0, "Retry-After: 2 beats the 50 ms backoff"
    assert early == [] and [(d.state, d.attempts) for d in second] == [("sent", 2)] and requests == 2


def test_backoff_grows_and_gives_up_after_max_attempts(dsn):
    async def run():
        with scripted(Reply(503, {"error": "down"})) as receiver:
            pool = await outbox.open_pool(dsn)
            try:
                await outbox.enqueue(pool, notice(1), ["hook"])
                worker = Worker(pool, [webhook("hook", receiver.url)], max_attempts=4, backoff_base_s=0.2, poll_s=0.1)
                waits, outcomes = [], []
                while not outcomes or outcomes[-1].state != "dead":
                    outcomes += await worker.deliver_due()
                    if outcomes and outcomes[-1].state == "pending" and len(waits) < len(outcomes):
                        waits.append(
                            await pool.fetchval(
                                "SELECT extract(epoch FROM next_attempt_at - now()) FROM notification_outbox"
                            )
                        )
                    await asyncio.sleep(0.05)
                return waits, outcomes, len(receiver.requests)
            finally:
                await pool.close()

    waits, outcomes, requests = asyncio.run(run())
    assert [(d.state, d.attempts) for d in outcomes] == [("pending", 1), ("pending", 2), ("pending", 3), ("dead", 4)]
    # equal jitter: attempt n waits between half and all of 0.2 s * 2^(n-1)
    for n, wait in enumerate(waits, 1):
        assert 0.2 * 2 ** (n - 1) / 2 - 0.05 <= float(wait) <= 0.2 * 2 ** (n - 1), (n, wait)
    assert outcomes[-1].error.startswith("gave up after 4 attempts: hook: HTTP 503") and requests == 4


def test_failed_is_a_dead_letter_at_once_listed_and_requeued_by_the_cli(dsn, capsys):
    reported: list[Delivery] = []

    async def on_outcome(delivery: Delivery) -> None:
        reported.append(delivery)

    async def deliver(receiver) -> list[Delivery]:
        pool = await outbox.open_pool(dsn)
        try:
            await outbox.enqueue(pool, notice(1), ["hook"])
            await outbox.enqueue(pool, notice(2), ["hook"])
            worker = Worker(pool, [webhook("hook", receiver.url)], on_outcome, **FAST)
            return await worker.deliver_due()
        finally:
            await pool.close()

    with scripted(Reply(400, {"error": "unknown event type"}), Reply(202)) as receiver:
        done = asyncio.run(deliver(receiver))
    # one 400 and one 202, the two sent at once: either notice may have met the 400
    assert sorted((d.state, d.attempts) for d in done) == [("dead", 1), ("sent", 1)]
    assert sorted(reported, key=lambda d: d.incident) == sorted(done, key=lambda d: d.incident), "all reported"
    dead = next(d for d in done if d.state == "dead")
    assert dead.error == 'hook: HTTP 400: {"error": "unknown event type"}' and dead.stage == "diagnosed"

    assert cli(["notifications", "--dsn", dsn]) == 0
    out, err = capsys.readouterr()
    [line] = out.splitlines()
    row_id = int(line.split()[0])
    assert (
        line
        == f'{row_id} dead {dead.incident} hook diagnosed attempts=1: hook: HTTP 400: {{"error": "unknown event type"}}'
    )
    assert err.strip() == "1 dead letter(s)"
    assert cli(["notifications", "--pending", "--dsn", dsn]) == 0 and capsys.readouterr().out == ""

    assert cli(["notifications", "--retry", str(row_id), "--dsn", dsn]) == 0
    assert capsys.readouterr().out.startswith(f"{row_id} pending {dead.incident} hook diagnosed attempts=0 next ")
    assert cli(["notifications", "--retry", str(row_id), "--dsn", dsn]) == 1, "it is no longer dead"
    assert f"no dead letter with id {row_id}" in capsys.readouterr().err
    assert cli(["notifications", "--dsn", dsn]) == 0 and capsys.readouterr().out == ""

    async def deliver_again() -> list[Delivery]:
        with scripted(Reply(202)) as receiver:
            pool = await outbox.open_pool(dsn)
            try:
                return await Worker(pool, [webhook("hook", receiver.url)], **FAST).deliver_due()
            finally:
                await pool.close()

    assert [(d.incident, d.state, d.attempts) for d in asyncio.run(deliver_again())] == [(dead.incident, "sent", 1)]


def test_slack_updates_the_incidents_message_in_place(dsn, monkeypatch):
    monkeypatch.setenv("AIOPS_TEST_SLACK_TOKEN", "xoxb-test-token")

    async def run(api: SlackApi):
        pool = await outbox.open_pool(dsn)
        try:
            config = SlackConfig(
                name="oncall",
                type="slack",
                bot_token={"env": "AIOPS_TEST_SLACK_TOKEN"},
                channel="C0123ABCD",
                api_url=api.url,
                rate_per_minute=600,
            )
            worker = Worker(pool, [build(config)], **FAST)
            # both stages of incident 1 are due at once, and incident 2's diagnosis
            await outbox.enqueue(pool, notice(1), ["oncall"])
            await outbox.enqueue(pool, notice(1, Stage.RESOLVED), ["oncall"])
            await outbox.enqueue(pool, notice(2), ["oncall"])
            first = await worker.deliver_due()
            second = await worker.deliver_due()
            return first, second, await rows(pool)
        finally:
            await pool.close()

    with SlackApi("xoxb-test-token") as api:
        first, second, table = asyncio.run(run(api))
    assert sorted((d.incident, d.stage) for d in first) == [
        ("shop/incident-1", "diagnosed"),
        ("shop/incident-2", "diagnosed"),
    ]
    assert [(d.incident, d.stage, d.state) for d in second] == [("shop/incident-1", "resolved", "sent")]
    assert sorted(api.calls) == ["chat.postMessage", "chat.postMessage", "chat.update"]
    refs = {(r["incident"], r["stage"]): r["ref"] for r in table}
    assert refs[("shop/incident-1", "resolved")] == refs[("shop/incident-1", "diagnosed")], "the same message"
    assert refs[("shop/incident-2", "diagnosed")] != refs[("shop/incident-1", "diagnosed")]
    assert len(api.messages) == 2


def test_a_hanging_channel_does_not_hold_up_another(dsn):
    async def run():
        # a server that takes connections and never answers
        with socket.create_server(("127.0.0.1", 0), backlog=128) as silent, TimedReceiver() as receiver:
            silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"

            def channels():
                return [webhook("hangs", silent_url, timeout_s=3), webhook("healthy", receiver.url)]

            pool = await outbox.open_pool(dsn)
            try:
                async with workers(dsn, channels, send_timeout_s=4, lease_s=10):
                    started = time.monotonic()
                    for i in range(30):
                        await outbox.enqueue(pool, notice(i), ["hangs", "healthy"])
                    await until(lambda: len(receiver.events) == 30, 2.5, "the healthy channel's 30 notices")
                    took = time.monotonic() - started
                    states = await rows(
                        pool, "SELECT channel, state, count(*) AS n FROM notification_outbox GROUP BY 1, 2"
                    )
                return took, states
            finally:
                await pool.close()

    took, states = asyncio.run(run())
    assert took < 2.5
    assert {(s["channel"], s["state"]): s["n"] for s in states} == {
        ("healthy", "sent"): 30,
        ("hangs", "sending"): 8,
        ("hangs", "pending"): 22,
    }, "the hanging channel holds its 8 slots (concurrency) while the healthy one delivered everything"


# the figures


def test_a_thousand_incidents_through_a_receiver_failing_30_percent_none_lost_none_duplicated(dsn):
    figures = asyncio.run(lossless(dsn, notices=1000, fail_ratio=0.3, count=2))
    print(
        f"\n1000 notices, receiver failing 30%: lost {figures['lost']}, duplicated {figures['duplicated']}, "
        f"dead {figures['dead']}, refused {figures['refused']}, {figures['attempts']} sends, "
        f"{figures['seconds']:.1f}s"
    )
    assert figures["refused"][500] + figures["refused"][429] > 300, "the receiver did refuse about 30% of the sends"
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["dead"] == 0
    assert figures["attempts"] == 1000 + sum(figures["refused"].values()), "one send per refusal, none wasted"


def test_latency_from_enqueue_to_acceptance(dsn):
    seconds = asyncio.run(latency(dsn, notices=100, rate=10.0))
    p50, p95 = percentile(seconds, 50), percentile(seconds, 95)
    print(f"\nenqueue -> accepted, healthy receiver, 10 notices/s: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    assert p95 < 0.5, "the enqueue's NOTIFY wakes the sender: no 5 s poll interval in the way"
