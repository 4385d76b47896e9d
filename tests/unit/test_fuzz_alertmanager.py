"""Fuzzing the Alertmanager webhook: whatever reaches POST /webhook/alertmanager is answered 200, or 400 naming
the field (413 when too big), never 500, and never 503 for a payload that is at fault, since Alertmanager
retries a 5xx forever. A rejected notification writes nothing; an accepted one writes only what the API
server would take.

The examples per test come from the hypothesis profile (tests/conftest.py): a few in the unit suite,
10,000 with HYPOTHESIS_PROFILE=fuzz.
"""

import asyncio
import io
import json
import re
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import example, given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from aiops.api.common import DNS_LABEL
from aiops.api.incident import IncidentSpec
from aiops.ingest.ingestor import Ingestor
from aiops.ingest.receiver import PATH, Receiver
from aiops.ingest.wire import (
    ALERTS_ANNOTATION,
    MAX_RECORDED_ALERTS,
    BadRequest,
    alert_states,
    incident_manifest,
    incident_name,
    merge,
    parse,
    recorded_states,
)
from aiops.settings import WebhookSettings
from support.fakekube import FakeClient
from support.strategies import dns_labels, huge, json_text, json_values, mutated, regressions, texts, timestamps

TOKEN = "t" * 32
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _labels() -> st.SearchStrategy[dict]:
    keys = st.sampled_from(["severity", "namespace", "pod", "deployment", "node"]) | texts(12)
    values = st.sampled_from(["critical", "page", "warning", "Info", "shop"]) | texts() | dns_labels()
    return st.builds(lambda name, rest: {"alertname": name, **rest}, texts(), st.dictionaries(keys, values, max_size=4))


def _annotations() -> st.SearchStrategy[dict]:
    keys = st.sampled_from(["summary", "description", "message", "runbook_url"]) | texts(12)
    return st.dictionaries(keys, texts() | huge(st.sampled_from(["x", " ", "\n"])), max_size=3)


ALERTS = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved"]),
        "labels": _labels(),
        "startsAt": timestamps(),
        "fingerprint": st.from_regex(r"[0-9a-fA-F]{1,64}", fullmatch=True) | texts(20),
    },
    optional={
        "annotations": _annotations(),
        "endsAt": timestamps(),
        "generatorURL": texts() | huge(st.just("http://p/?q=")),
    },
)
NOTIFICATIONS = st.fixed_dictionaries(
    {
        "version": st.just("4") | texts(3),
        "groupKey": texts() | huge(st.just('{}:{alertname="X"}'), at_most=300),
        "status": st.sampled_from(["firing", "resolved"]),
        "alerts": st.lists(ALERTS, min_size=1, max_size=4),
    },
    optional={
        "receiver": texts(),
        "groupLabels": st.fixed_dictionaries({}, optional={"namespace": dns_labels(), "alertname": texts()}),
        "commonLabels": _labels(),
        "commonAnnotations": _annotations(),
        "externalURL": texts(),
        "truncatedAlerts": st.integers(),
    },
)
BODIES = st.one_of(
    NOTIFICATIONS.map(json.dumps),
    NOTIFICATIONS.flatmap(mutated).map(json.dumps),
    json_text(),
).map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(max_size=200)


def _body(*starts: str, namespace: str = "shop") -> bytes:
    """A firing notification of one alert per start time."""
    alerts = [
        {"status": "firing", "labels": {"alertname": "X"}, "startsAt": s, "fingerprint": f"{i:x}"}
        for i, s in enumerate(starts)
    ]
    note = {"version": "4", "groupKey": "g", "status": "firing", "groupLabels": {"namespace": namespace}}
    return json.dumps(note | {"alerts": alerts}).encode()


# Found while fuzzing, each failing before its fix: deep nesting (RecursionError) and a number past int()'s
# digit limit (ValueError) escaped parse(); a start time without an offset beside one with an offset made the
# lead alert's min() raise TypeError (503); a namespace label with a trailing newline passed
# re.match(DNS_LABEL) and the API server refused the Incident (503).
FOUND = (
    b"[" * 100_000,
    b'{"a": ' + b"1" * 5000 + b"}",
    _body("2026-01-02T03:04:05Z", "2026-01-02T03:04:05"),
    _body("2026-01-02T03:04:05Z", namespace="shop\n"),
)


@regressions("body", FOUND)
@given(BODIES)
def test_the_wire_format_parses_or_names_the_field(body):
    try:
        note = parse(body)
    except BadRequest as exc:
        assert exc.problems and all(re.match(r"\S.*: ", p, re.S) for p in exc.problems), exc.problems
        return
    states = alert_states(note)
    name = incident_name(note.alerts[0].name, note.group_key)
    assert re.fullmatch(DNS_LABEL, name) and len(name) <= 63
    try:
        manifest = incident_manifest(note, name, "aiops-alerts", states)
    except ValueError:  # pydantic's ValidationError: the receiver answers 400, "alert does not make a valid Incident"
        return
    IncidentSpec.model_validate(manifest["spec"])
    assert recorded_states(manifest) == states
    assert len(merge(states, states)) == len(states) <= max(MAX_RECORDED_ALERTS, len(note.alerts))


# Found while fuzzing: a state that is a mapping raised KeyError, deep nesting RecursionError (503 for the group).
@example(raw='{"3f2a": {}}')
@example(raw="[" * 100_000)
@given(json_text() | json_values().map(lambda value: json.dumps({"3f2a": value})))
def test_recorded_alerts_read_from_any_annotation(raw):
    states = recorded_states({"metadata": {"annotations": {ALERTS_ANNOTATION: raw}}})
    assert all(isinstance(v, list) and len(v) == 2 and all(isinstance(s, str) for s in v) for v in states.values())


class ApiServerRules(FakeClient):
    """The in-memory client, refusing with 422 what the API server would: a name or namespace that is not a
    DNS label, a spec that does not fit the Incident schema. Counts the writes."""

    writes_made = 0

    def create(self, kind, body):
        meta = body["metadata"]
        bad = [f for f in ("name", "namespace") if not (re.fullmatch(DNS_LABEL, meta[f]) and len(meta[f]) <= 63)]
        if bad:
            raise ApiException(status=422, reason=f"metadata.{bad[0]}: {meta[bad[0]]!r} is not a DNS label")
        IncidentSpec.model_validate(body["spec"])
        self.writes_made += 1
        return super().create(kind, body)

    def patch(self, *args, **kw):
        self.writes_made += 1
        return super().patch(*args, **kw)

    def patch_status(self, *args, **kw):
        self.writes_made += 1
        return super().patch_status(*args, **kw)


@pytest.fixture(scope="module")
def webhook():
    """POST to a Receiver's app in-process: (status, JSON answer, writes made), against ApiServerRules."""
    client = ApiServerRules()
    conf = WebhookSettings(host="127.0.0.1", port=0, token=TOKEN, rate=0)
    receiver = Receiver(conf, ingestor=Ingestor("aiops-alerts", client, clock=lambda: NOW))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def start() -> TestClient:
        http = TestClient(TestServer(receiver.app()))
        await http.start_server()
        return http

    async def post(http: TestClient, body: bytes) -> tuple[int, dict]:
        # A file-like body: aiohttp warns about (and the suite fails on) raw bytes over 1 MiB, which the 413 needs.
        async with http.post(PATH, data=io.BytesIO(body), headers=headers) as response:
            return response.status, await response.json()

    with asyncio.Runner() as runner:
        http = runner.run(start())

        def send(body: bytes) -> tuple[int, dict, int]:
            before = client.writes_made
            status, answer = runner.run(post(http, body))
            return status, answer, client.writes_made - before

        yield send
        runner.run(http.close())
    receiver.pool.shutdown()


@regressions("body", FOUND)
@given(BODIES)
def test_the_receiver_answers_200_or_names_the_problem(webhook, body):
    status, answer, writes = webhook(body)
    assert status in (200, 400, 413), answer
    if status != 200:
        assert answer["error"] and writes == 0, answer
