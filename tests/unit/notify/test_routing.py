"""The notifications configuration: validation names the file and the field; routing is Alertmanager's
(ordered routes, first match wins unless `continue`, `default` when none matched, `=~` anchored regexes)."""

import pytest

from aiops.notify.config import NotifyConfigError, load, parse, route
from aiops.notify.notice import Notice, Stage

CHANNELS = [
    {"name": n, "type": "webhook", "url": {"env": f"URL_{n.upper()}"}} for n in ("oncall", "audit", "payments", "ops")
]


def notice(severity="critical", namespace="prod-shop", cluster="local", **labels) -> Notice:
    return Notice(
        incident=f"{namespace}/checkout-down",
        uid="u-1",
        stage=Stage.DIAGNOSED,
        title="checkout is down",
        severity=severity,
        cluster=cluster,
        namespace=namespace,
        labels=labels,
        at="2026-01-02T03:04:05Z",
    )


def config(routes, default=()):
    return parse({"channels": CHANNELS, "routes": routes, "default": list(default)}, "/etc/aiops/notify.yaml")


def error(data) -> str:
    with pytest.raises(NotifyConfigError) as caught:
        parse(data, "/etc/aiops/notify.yaml")
    return str(caught.value)


def routes(*entries, **top) -> dict:
    return {"channels": CHANNELS, "routes": list(entries), **top}


def matching(**matchers) -> dict:
    return {"matchers": matchers, "channels": ["oncall"]}


WEBHOOK = {"name": "x", "type": "webhook", "url": {"env": "U"}}


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            routes({"channels": ["oncall"]}, {"channels": ["audit"]}, {"channels": ["ops", "pager"]}),
            "routes[2].channels[1]: no channel named 'pager'",
        ),
        (routes(default=["oncall", "nobody"]), "default[1]: no channel named 'nobody'"),
        ({"channels": [*CHANNELS, CHANNELS[1]]}, "channels[4].name: a second channel named 'audit'"),
        ({"channels": [{"name": "x", "type": "slack"}]}, "channels[0]: name exactly one of webhookUrl or botToken"),
        ({"channels": [{**WEBHOOK, "retries": 3}]}, "channels[0].retries: unknown field"),
        ({"channels": [{"name": "x", "type": "webhook"}]}, "channels[0].url: Field required"),
        ({"channels": [{**WEBHOOK, "type": "pager"}]}, "channels[0]: Input tag 'pager'"),
        (routes(matching(severity="critcal")), "routes[0].matchers.severity[0]: Input should be 'critical'"),
        (routes(matching(labels={"team": "=~(pay"})), "routes[0].matchers.labels.team: not a regular expression"),
        (routes(matching(cluster="=~[a-")), "routes[0].matchers.cluster: not a regular expression"),
        (routes(matching(team="payments")), "routes[0].matchers.team: unknown field"),
        (routes({"channels": []}), "routes[0].channels: List should have at least 1 item"),
        (
            routes({"channels": ["oncall"], "continue": "perhaps"}),
            "routes[0].continue: Input should be a valid boolean",
        ),
        ({"channels": CHANNELS, "route": []}, "route: unknown field"),
        (["oncall"], "expected a mapping with channels and routes"),
    ],
)
def test_a_bad_configuration_names_the_file_and_the_field(data, expected):
    message = error(data)
    assert message.startswith("notify config /etc/aiops/notify.yaml: "), message
    assert expected in message, message


def test_load_reads_yaml_and_names_the_file(tmp_path):
    path = tmp_path / "notify.yaml"
    path.write_text(
        "channels:\n"
        "  - {name: oncall, type: slack, botToken: {env: SLACK_TOKEN}, channel: C0123, ratePerMinute: 30}\n"
        "routes:\n"
        "  - matchers: {severity: critical}\n"
        "    channels: [oncall]\n"
        "    continue: true\n"
        "default: [oncall]\n"
    )
    cfg = load(path)
    assert cfg.channels[0].rate_per_minute == 30 and cfg.routes[0].continue_ is True
    path.write_text("channels:\n  - {name: oncall, type: slack, webhookUrl: {env: U}}\nroutes:\n  - channels: [ops]\n")
    with pytest.raises(
        NotifyConfigError, match=rf"^notify config {path}: routes\[0\]\.channels\[0\]: no channel named 'ops'$"
    ):
        load(path)
    path.write_text("channels: [")
    with pytest.raises(NotifyConfigError, match=rf"^notify config {path}: not YAML"):
        load(path)
    with pytest.raises(NotifyConfigError, match=r"^notify config /nonexistent/notify.yaml: No such file"):
        load("/nonexistent/notify.yaml")


def test_first_matching_route_wins():
    cfg = config(
        [
            {"matchers": {"severity": ["critical", "high"]}, "channels": ["oncall"]},
            {"matchers": {"namespace": "prod-shop"}, "channels": ["audit"]},
        ],
        default=["ops"],
    )
    assert route(cfg, notice("critical")) == ["oncall"]
    assert route(cfg, notice("high")) == ["oncall"]
    assert route(cfg, notice("warning")) == ["audit"]
    assert route(cfg, notice("warning", namespace="staging")) == ["ops"]


def test_continue_goes_on_to_later_routes_and_each_channel_comes_once():
    cfg = config(
        [
            {"matchers": {"severity": "critical"}, "channels": ["oncall", "audit"], "continue": True},
            {"matchers": {"labels": {"team": "payments"}}, "channels": ["payments", "audit"], "continue": True},
            {"matchers": {"cluster": "local"}, "channels": ["ops"]},
            {"channels": ["audit"]},  # never reached for a local notice: the route before it does not continue
        ],
        default=["ops"],
    )
    assert route(cfg, notice("critical", team="payments")) == ["oncall", "audit", "payments", "ops"]
    assert route(cfg, notice("critical", cluster="edge-1")) == ["oncall", "audit"]
    assert route(cfg, notice("info", cluster="edge-1")) == ["audit"]


def test_default_only_when_no_route_matched():
    cfg = config([{"matchers": {"severity": "critical"}, "channels": ["oncall"], "continue": True}], default=["ops"])
    assert route(cfg, notice("critical")) == ["oncall"], "a continuing route that matched still counts as a match"
    assert route(cfg, notice("low")) == ["ops"]
    assert route(config([]), notice()) == [], "no routes and no default: nowhere"
    assert route(config([], default=["audit"]), notice()) == ["audit"]


def test_regex_matchers_are_anchored_and_a_missing_label_is_empty():
    cfg = config(
        [
            {"matchers": {"namespace": "=~prod-.*", "labels": {"team": "=~pay.*|billing"}}, "channels": ["payments"]},
            {"matchers": {"labels": {"owner": "=~"}}, "channels": ["ops"]},  # matches only where owner is absent/empty
            {"matchers": {"cluster": "=~edge-[0-9]+"}, "channels": ["oncall"]},
        ],
        default=["audit"],
    )
    assert route(cfg, notice(namespace="prod-shop", team="payments")) == ["payments"]
    assert route(cfg, notice(namespace="prod-shop", team="billing")) == ["payments"]
    assert route(cfg, notice(namespace="preprod-shop", team="payments")) == ["ops"], "anchored: preprod- is not prod-"
    assert route(cfg, notice(namespace="prod-shop", team="payments-eu", owner="x")) == ["payments"]
    assert route(cfg, notice(namespace="prod-shop", team="xbilling", owner="x")) == ["audit"], "anchored on the left"
    assert route(cfg, notice(cluster="edge-12", owner="x")) == ["oncall"]
    assert route(cfg, notice(cluster="edge-12a", owner="x")) == ["audit"]


def test_exact_matchers_are_exact():
    cfg = config([{"matchers": {"namespace": "prod", "labels": {"team": "pay.*"}}, "channels": ["payments"]}])
    assert route(cfg, notice(namespace="prod", team="pay.*")) == ["payments"]
    assert route(cfg, notice(namespace="prod", team="payments")) == []
    assert route(cfg, notice(namespace="production", team="pay.*")) == []
