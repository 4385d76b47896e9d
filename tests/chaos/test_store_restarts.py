"""PostgreSQL (history) and Redis (the event stream, with a consumer group reading it) restarted under a burst
of Incidents: every Incident and diagnosis is a history row and a stream event exactly once, and the consumer
group gets every event after Redis is back."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import redis

from aiops.stores.eventconsumer import GroupConsumer
from aiops.stores.eventstream import STREAM
from aiops_dev.eval import cases
from support import counting
from support.servers import RedisServer, query

DOWN_S = 3.0  # each store is away this long: a restart, not a failover
TYPES = ("INCIDENT_CREATED", "DIAGNOSED")


class Consumer:
    """A member of consumer group `chaos`, reading and acknowledging in a thread through the Redis restart; it
    keeps every delivery (an entry given again after a restart shows twice) and skips an event id it has had,
    as a consumer that must not act twice does."""

    def __init__(self, url: str):
        self.member = GroupConsumer(url, "chaos", "c-1", start="0-0", block_s=0.5)
        self.deliveries: list[str] = []  # event ids, in delivery order
        self.handled: dict[str, dict] = {}  # event id -> event, each once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                entries = self.member.read()
                for e in entries:
                    self.deliveries.append(e.event["id"])
                    self.handled.setdefault(e.event["id"], e.event)
                if entries:
                    self.member.ack(*(e.id for e in entries))
            except redis.RedisError:  # away: the group is read again once it is back
                time.sleep(0.2)

    def __enter__(self) -> Consumer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.member.close()


def test_postgres_and_redis_restart_during_a_burst(postgres, dsn, kubectl, operator_env, namespace, writer, tally):
    redis_server = RedisServer(persist=True).start()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    cases.write("checkout-oomkilled", writer)
    # A third of the burst before, one during each outage: their events are published while the store is away.
    before, pg_down, redis_down = ([f"{w}-{i:02d}" for i in range(n)] for w, n in (("a", 20), ("b", 10), ("c", 10)))
    names = before + pg_down + redis_down
    keys = {f"{namespace}/{n}" for n in names}
    try:
        operator = operator_env({"AIOPS_POSTGRES_DSN": dsn, "AIOPS_REDIS_URL": redis_server.url})
        with Consumer(redis_server.url) as consumer:
            counting.create(kubectl, before, namespace, analysis={"llm": False})
            counting.until(counting.reached(kubectl, namespace, "Diagnosed", 5), 60)
            postgres.stop()
            counting.create(kubectl, pg_down, namespace, analysis={"llm": False})
            time.sleep(DOWN_S)
            postgres.start()
            counting.until(counting.reached(kubectl, namespace, "Diagnosed", 20), 60)
            redis_server.stop()
            counting.create(kubectl, redis_down, namespace, analysis={"llm": False})
            time.sleep(DOWN_S)
            redis_server.start()
            counting.until(counting.reached(kubectl, namespace, "Diagnosed", len(names)), 120)

            def rows() -> Counter:
                found = query(dsn, "SELECT type, key FROM audit_log WHERE type = ANY($1)", list(TYPES))
                return Counter((r["type"], r["key"]) for r in found if r["key"] in keys)

            def stream() -> Counter:
                events = [json.loads(fields["event"]) for _, fields in client.xrange(STREAM)]
                return Counter((e["type"], e["key"]) for e in events if e["key"] in keys)

            everything = {(t, k) for t in TYPES for k in keys}
            counting.until(lambda: set(rows()) >= everything and set(stream()) >= everything, 30)
            time.sleep(2)  # anything late would show now
            history, appended = rows(), stream()
            delivered = Counter((e["type"], e["key"]) for e in consumer.handled.values() if e["key"] in keys)
            redelivered = len(consumer.deliveries) - len(consumer.handled)
        analysed = query(dsn, "SELECT i.key FROM analyses a JOIN incidents i ON i.uid = a.incident_uid")
        lost, duplicated = [], []
        for where, seen in (("history", history), ("stream", appended), ("consumer group", delivered)):
            lost += [f"{where}: {t} {k}" for t, k in sorted(everything - set(seen))]
            duplicated += [f"{where}: {n} x {t} {k}" for (t, k), n in seen.items() if n > 1]
        lost += [f"history: no analyses row for {k}" for k in sorted(keys - {r["key"] for r in analysed})]
        log = operator.log()
        retried, held = log.count("history: PostgreSQL unavailable"), "holding events until it is back" in log
        tally(len(everything), len(lost), len(duplicated),
              f"{sum(history.values())} history rows, {sum(appended.values())} stream events, "
              f"{sum(delivered.values())} read by the group ({redelivered} given again, skipped by event id); "
              f"{retried} history retries, events held for Redis: {held}")  # fmt: skip
        assert retried and held, "an outage went unnoticed: the case did not test what it says"
        assert not lost and not duplicated, f"lost: {lost[:10]}; duplicated: {duplicated[:10]}"
    finally:
        client.close()
        redis_server.close()
