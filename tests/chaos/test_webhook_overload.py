"""A real Alertmanager sends the operator's receiver a burst far above its rate limit: what is refused is refused
explicitly and sent again by Alertmanager, every group becomes exactly one Incident, no alert is recorded twice."""

from __future__ import annotations

import time
import uuid

import pytest

from aiops.ingest.receiver import PATH
from aiops.ingest.wire import GROUP_LABEL, recorded_states
from aiops_dev.controlplane import free_port
from support import counting
from support.observe import metrics_text, total
from support.servers import ALERTMANAGER, AlertmanagerServer

GROUPS = 150
RATE, BURST = 5, 20  # requests/s and burst the receiver takes from one client: the burst is 7 times that
TOKEN = "chaos-token-" + uuid.uuid4().hex
ACCEPTED = ("created", "updated", "deduplicated", "resolved", "ignored")
REFUSED = ("rate_limited", "error")


@pytest.mark.skipif(not ALERTMANAGER, reason="needs prometheus-alertmanager")
def test_alertmanager_burst_far_above_the_receivers_rate(kubectl, operator_env, namespace, tmp_path, tally):
    port, metrics = free_port(), free_port()
    operator_env({"AIOPS_WEBHOOK_ADDR": f"127.0.0.1:{port}", "AIOPS_WEBHOOK_TOKEN": TOKEN,
                  "AIOPS_WEBHOOK_NAMESPACE": namespace, "AIOPS_WEBHOOK_RATE": str(RATE),
                  "AIOPS_WEBHOOK_BURST": str(BURST), "AIOPS_METRICS_PORT": str(metrics)})  # fmt: skip
    receiver = {"url": f"http://127.0.0.1:{port}{PATH}",
                "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}}}  # fmt: skip
    am = AlertmanagerServer(tmp_path, {
        "route": {"receiver": "aiops", "group_by": ["alertname", "instance"], "group_wait": "1s",
                  "group_interval": "2s", "repeat_interval": "1h"},
        "receivers": [{"name": "aiops", "webhook_configs": [receiver]}],
    })  # fmt: skip
    am.start()
    instances = [f"node-{i:03d}" for i in range(GROUPS)]
    try:
        counting.until(lambda: metrics_text(metrics), 20)
        am.fire(*({"alertname": "ChaosBurst", "namespace": namespace, "instance": i} for i in instances))

        def incidents() -> list[dict]:
            return kubectl.json("get", "incidents", "-n", namespace, "-l", GROUP_LABEL)["items"]

        counting.until(lambda: len(incidents()) >= GROUPS, 120)
        time.sleep(4)  # two more group intervals: a notification sent again now would show as a second Incident
        found = incidents()
        answers = {o: total(metrics, "aiops_webhook_requests_total", outcome=o) for o in ACCEPTED + REFUSED}
        failed = total(am.port, "alertmanager_notifications_failed_total", integration="webhook")
    finally:
        am.stop()
    per_instance: dict[str, list[str]] = {}
    recorded: list[str] = []
    for obj in found:
        per_instance.setdefault(obj["spec"]["alert"]["labels"]["instance"], []).append(obj["metadata"]["name"])
        recorded += list(recorded_states(obj))
        news = [e["reason"] for e in obj["status"].get("timeline") or []].count("New")
        per_instance[obj["spec"]["alert"]["labels"]["instance"]] += ["(New again)"] * max(news - 1, 0)
    lost = [i for i in instances if i not in per_instance]
    duplicated = [f"{i}: {names}" for i, names in per_instance.items() if len(names) > 1]
    duplicated += [f"alert {f} recorded {recorded.count(f)} times" for f in set(recorded) if recorded.count(f) > 1]
    accepted, refused = sum(answers[o] for o in ACCEPTED), sum(answers[o] for o in REFUSED)
    tally(GROUPS, len(lost), len(duplicated),
          f"{accepted:.0f} accepted ({answers['created']:.0f} created), {refused:.0f} refused "
          f"({answers['rate_limited']:.0f} x 429, {answers['error']:.0f} x 503), {len(found)} Incidents; "
          f"Alertmanager: {failed:.0f} failed notifications, sent again")  # fmt: skip
    assert refused > 0, "the burst never went over the limit: the case did not test what it says"
    assert not lost and not duplicated, f"lost: {lost[:10]}; duplicated: {duplicated[:10]}"
