"""SOP analysis: the answer model, its conversion to an SOPSpec, findings, and the model round trip against a
scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from aiops.api.analysisrun import InferenceSettings
from aiops.api.sop import SOPSpec
from aiops.inference.gateway import GatewayConfig
from aiops.inference.prompts import SOP_PROMPT_VERSION
from aiops.sops import sopfile
from aiops.sops.analysis import (
    BOUNDED_SOP_ANSWER_SCHEMA,
    MIN_MAX_TOKENS,
    SOP_ANSWER_SCHEMA,
    SOPAnswer,
    analyse,
    check,
    draft_name,
    gateway_config,
    lint_findings,
    to_spec,
)
from support.scripted_openai import ScriptedOpenAI, answer, content, status

RUNBOOK = """Checkout 5xx runbook (wiki export)

When CheckoutHighErrorRate fires, look at the 5xx ratio in Grafana. If it is above 5 %, restart the
checkout deployment (ask the payments lead first). Then check the ratio again. If nothing helps, page
payments-oncall in #payments. Admin UI: https://admin:hunter2@checkout.internal/ db_password=s3cr3t-Pa55
"""


# The properties of each step type, as strict json_schema makes the model write them: all present.
STEP_FIELDS = {
    "check": ("promql", "command", "automation", "onSuccess", "onFailure", "instructions"),
    "decision": ("promql", "command", "onSuccess", "onFailure", "instructions"),
    "action": ("action", "automation", "approvalRequired", "onSuccess", "onFailure", "instructions"),
    "escalate": ("instructions",),
}


def step(id_, type_, title, **fields):
    """A draft step as the model writes it."""
    base = {"id": id_, "type": type_, "title": title}
    base |= {k: "" if k == "instructions" else None for k in STEP_FIELDS[type_]}
    assert fields.keys() <= base.keys(), f"{type_} steps have no {fields.keys() - base.keys()}"
    return base | fields


def good() -> dict:
    return {
        "title": "Checkout returns 5xx",
        "description": "The checkout error ratio is high; restart checkout, verify, else page payments.",
        "match": {"alertNames": ["CheckoutHighErrorRate"], "symptoms": ["5xx"]},
        "steps": [
            step(
                "check-errors",
                "check",
                "5xx ratio above 5 %",
                promql='sum(rate(http_requests_total{job="checkout",code=~"5.."}[5m])) / '
                'sum(rate(http_requests_total{job="checkout"}[5m])) > 0.05',
                onFailure="page",
            ),
            step(
                "restart",
                "action",
                "Restart checkout",
                action={"type": "rolloutRestart", "params": [{"name": "deployment", "value": "checkout"}]},
                automation="manual",
                approvalRequired=True,
                instructions="Ask the payments lead first.",
            ),
            step(
                "verify",
                "check",
                "5xx ratio back under 5 %",
                promql='sum(rate(http_requests_total{job="checkout",code=~"5.."}[5m]))',  # no threshold: lint
                onSuccess="page",
                onFailure="page",
            ),
            step("page", "escalate", "Page payments-oncall"),
        ],
        "escalation": {"afterMinutes": None, "contacts": ["payments-oncall"], "channel": "#payments"},
        "findings": [
            {"rule": "no-rollback", "step": "restart", "message": "Say how to undo the restart if it makes it worse."},
            {"rule": "unverified-action", "step": "restart", "message": "duplicate of lint? no: lint sees verify."},
            {"rule": "ambiguous-instruction", "step": None, "message": "Grafana dashboard is not named."},
        ],
    }


@pytest.fixture
def server():
    with ScriptedOpenAI() as s:
        yield s
    assert s.unscripted == 0, f"{s.unscripted} request(s) more than scripted"
    assert s.remaining == 0, f"{s.remaining} scripted repl(ies) never requested"


def config(url: str, **kw) -> GatewayConfig:
    return GatewayConfig(base_url=url, model="scripted-model", backoff_base_s=0, **kw)


def run(url: str, text: str = RUNBOOK, **kw):
    return analyse(text, config(url, **kw), "from-wiki", sleep=lambda _: None)


def repair_of(request: dict) -> str:
    *_, assistant, repair = request["messages"]
    assert assistant["role"] == "assistant" and repair["role"] == "user"
    return repair["content"]


# --- the answer model and its conversion ---------------------------------------------------------


def test_sent_schema_follows_openai_strict_rules():
    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    found = list(objects(SOP_ANSWER_SCHEMA))
    assert len(found) == 10  # answer, match, 4 step types, action, param, escalation, finding: no free-form maps
    for obj in found:
        assert obj["additionalProperties"] is False and obj["required"] == list(obj["properties"])

    def keywords(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key != "properties":
                    yield key
                yield from keywords(value) if key != "properties" else (k for v in value.values() for k in keywords(v))
        elif isinstance(node, list):
            for value in node:
                yield from keywords(value)

    sent = set(keywords(SOP_ANSWER_SCHEMA))
    assert not sent & {"minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "title", "default"}
    bounded = json.dumps(BOUNDED_SOP_ANSWER_SCHEMA)
    assert '"maxItems": 25' in bounded and '"default"' not in bounded
    step_schema = SOP_ANSWER_SCHEMA["$defs"]["DraftCheck"]["properties"]
    assert step_schema["onSuccess"]["anyOf"][1] == {"type": "null"}, "optional fields are required and nullable"
    assert SOP_ANSWER_SCHEMA["properties"]["steps"]["items"] == {
        "anyOf": [
            {"$ref": f"#/$defs/{name}"} for name in ("DraftCheck", "DraftDecision", "DraftActionStep", "DraftEscalate")
        ]
    }, "a union tagged by type, sent as anyOf (strict mode takes no oneOf)"
    assert "discriminator" not in json.dumps(SOP_ANSWER_SCHEMA)


def test_good_answer_converts_to_the_sop_spec():
    spec = to_spec(SOPAnswer.model_validate(good()))
    assert isinstance(spec, SOPSpec) and spec.source is None
    assert [s.id for s in spec.steps] == ["check-errors", "restart", "verify", "page"]
    restart = spec.steps[1]
    assert restart.action.type == "rolloutRestart" and restart.action.params == {"deployment": "checkout"}
    assert restart.approval_required is True and restart.instructions == "Ask the payments lead first."
    assert spec.steps[0].instructions is None, "empty instructions are absent, not empty"
    assert spec.match.alert_names == ["CheckoutHighErrorRate"]
    assert spec.escalation.wire() == {"contacts": ["payments-oncall"], "channel": "#payments"}
    assert check(SOPAnswer.model_validate(good())) == []


def broken(edit) -> SOPAnswer:
    body = good()
    edit(body)
    return SOPAnswer.model_validate(body)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda b: b["steps"][1].update(onSuccess="verify-fix"),
            "steps[1].onSuccess: no step has id 'verify-fix'; the step ids are: check-errors, restart, verify, page",
        ),
        (lambda b: b["steps"][2].update(onSuccess="check-errors"), "steps: the steps form a cycle"),
        (lambda b: b["steps"][2].update(id="restart"), "steps[1].id: 'restart' is used by more than one step"),
        (
            lambda b: b["findings"][0].update(step="reboot"),
            "findings[0].step: no step has id 'reboot'; use one of: check-errors, restart, verify, page, or null",
        ),
        (
            lambda b: b["steps"][1]["action"]["params"].append({"name": "deployment", "value": "x"}),
            "steps[1].action.params: 'deployment' is given more than once",
        ),
    ],
    ids=["missing-branch", "cycle", "duplicate-id", "finding-step", "duplicate-param"],
)
def test_problems_beyond_the_schema_are_worded_for_the_model(edit, expected):
    problems = check(broken(edit))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda b: b["steps"][1].update(action=None), "steps.1.action.action"),
        (lambda b: b["steps"][0].update(action={"type": "restartPod", "params": []}), "steps.0.check.action"),
        (lambda b: b["steps"][3].update(automation="auto"), "steps.3.escalate.automation"),
        (lambda b: b["steps"][1]["action"].update(type="deletePod"), "steps.1.action.action.type"),
        (lambda b: b["steps"][0].update(type="wait"), "steps.0"),
    ],
    ids=["action-without-action", "action-on-check", "auto-escalate", "unknown-action", "unknown-type"],
)
def test_step_shapes_are_the_schema_per_type(edit, expected):
    """What SOPSpec would refuse about a single step, the answer's schema already refuses (and a
    grammar-constrained server cannot produce)."""
    body = good()
    edit(body)
    with pytest.raises(ValidationError) as err:
        SOPAnswer.model_validate_json(json.dumps(body), strict=True)
    assert expected in [".".join(map(str, e["loc"])) for e in err.value.errors()]


def test_lint_findings_name_the_step():
    spec = to_spec(broken(lambda b: b["steps"].pop(2)))  # no verification after the restart
    found = {(f.rule, f.step): f for f in lint_findings(spec)}
    assert found[("unverified-action", "restart")].severity == "warning"
    assert found[("unverified-action", "restart")].message.startswith("no check follows this action's success")
    no_policy = to_spec(broken(lambda b: b.update(escalation=None)))
    assert ("no-escalation-policy", None) in [(f.rule, f.step) for f in lint_findings(no_policy)]
    assert all(f.source == "lint" for f in found.values())


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Checkout returns 5xx", "checkout-returns-5xx"),
        ("  ÜBER -- Ärger!! ", "ber-rger"),
        ("!!!", "from-wiki"),
        ("x" * 80, "x" * 63),
    ],
)
def test_draft_name(title, name):
    assert draft_name(title, "from-wiki") == name


def test_gateway_config_applies_the_runs_overrides_and_refuses_other_targets():
    base = GatewayConfig(base_url="http://vllm:8000/v1", model="qwen", api_key="k", max_tokens=1024)
    assert gateway_config(None, None) is None
    assert gateway_config(base, None).max_tokens == MIN_MAX_TOKENS
    over = gateway_config(base, InferenceSettings(model="llama", max_tokens=512, temperature=0.3))
    assert (over.model, over.max_tokens, over.temperature, over.api_key) == ("llama", 512, 0.3, "k")
    same = gateway_config(base, InferenceSettings(endpoint="http://vllm:8000/v1/"))
    assert same.base_url == base.base_url
    with pytest.raises(ValueError, match="only the operator's configured model endpoint"):
        gateway_config(base, InferenceSettings(endpoint="http://elsewhere/v1"))
    with pytest.raises(ValueError, match="inference pools are not available yet"):
        gateway_config(base, InferenceSettings(pool="gpu-pool"))


# --- with the model ------------------------------------------------------------------------------


def test_good_answer_gives_a_draft_markdown_and_merged_findings(server):
    server.push(answer(good(), prompt_tokens=1500, completion_tokens=600))
    result = run(server.url, max_tokens=1024)

    assert result.outcome == "completed" and result.succeeded and result.error is None
    assert result.name == "checkout-returns-5xx" and len(result.spec.steps) == 4
    assert (result.prompt_tokens, result.completion_tokens, result.requests) == (1500, 600, 1)
    assert result.model == "scripted-model" and result.prompt_version == SOP_PROMPT_VERSION == "sop-v2"
    # The markdown is a runbook the library can import as it is.
    back = sopfile.parse(result.markdown, "checkout-returns-5xx.md")
    assert back.spec.model_copy(update={"source": None}) == result.spec

    rules = [(f.source, f.rule, f.step) for f in result.findings]
    assert rules[0] == ("lint", "promql-without-threshold", "verify")
    assert next(f for f in result.findings if f.source == "lint").message.startswith("promql: the query has no")
    assert ("model", "no-rollback", "restart") in rules and ("model", "ambiguous-instruction", None) in rules
    # Lint saw the verify step after the restart: it does not report unverified-action; the model's claim stays
    # as its own finding.
    assert ("model", "unverified-action", "restart") in rules
    severities = {(f.source, f.rule): f.severity for f in result.findings}
    assert (
        severities[("model", "no-rollback")] == "warning" and severities[("model", "ambiguous-instruction")] == "info"
    )
    assert "4 steps" in result.summary() and "lint" in result.summary()

    (request,) = server.requests
    assert request["max_tokens"] == 1024
    assert request["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "sop_draft", "schema": BOUNDED_SOP_ANSWER_SCHEMA, "strict": True},
    }


def test_model_finding_that_lint_makes_too_is_dropped(server):
    body = good()
    body["steps"].pop(2)  # the restart is not verified: lint says so
    server.push(answer(body))
    result = run(server.url)
    unverified = [f for f in result.findings if f.rule == "unverified-action"]
    assert [(f.source, f.step) for f in unverified] == [("lint", "restart")]


def test_secrets_are_redacted_before_the_model_and_counted(server):
    server.push(answer(good()))
    result = run(server.url)
    sent = json.dumps(server.requests[0]["messages"])
    assert "hunter2" not in sent and "s3cr3t-Pa55" not in sent
    assert "<PASSWORD_1>" in sent and "<SECRET_1>" in sent
    assert result.redaction == {"PASSWORD": 1, "SECRET": 1}


def test_broken_step_graph_is_repaired(server):
    bad = good()
    bad["steps"][1]["onSuccess"] = "verify-fix"
    server.push(answer(bad, completion_tokens=500), answer(good(), completion_tokens=520))
    result = run(server.url)

    assert result.outcome == "completed" and result.requests == 2 and result.completion_tokens == 1020
    assert "steps[1].onSuccess: no step has id 'verify-fix'" in result.errors[0]
    assert "the step ids are: check-errors, restart, verify, page" in repair_of(server.requests[1])


def test_unknown_action_type_is_a_schema_error_fed_back(server):
    bad = good()
    bad["steps"][1]["action"]["type"] = "deletePod"
    server.push(answer(bad), answer(good()))
    result = run(server.url)
    assert result.outcome == "completed"
    assert "steps.1.action.action.type: Input should be 'restartPod'" in repair_of(
        server.requests[1]
    )  # step type, field


def test_prose_until_the_repairs_run_out_is_invalid(server):
    server.push(*[content("Sure! Here is your SOP: first restart checkout.")] * 3)
    result = run(server.url, max_repair_attempts=2)

    assert result.outcome == "invalid" and not result.succeeded and result.spec is None
    assert result.requests == 3 and len(result.errors) == 3
    assert "gave no valid answer in 3 replies" in result.error and "No SOP draft was made" in result.error
    assert "reply: Invalid JSON" in result.error
    assert result.summary().startswith("No SOP draft: model 'scripted-model'")


def test_unreachable_server(server):
    server.push(status(401, message="bad key"))
    result = run(server.url)
    assert result.outcome == "unreachable" and "rejected the API key" in result.error
    assert result.redaction, "the text was redacted before the attempt"


def test_json_object_mode_puts_the_sop_schema_in_the_prompt(server):
    server.push(answer(good()))
    assert run(server.url, structured_output="json_object").outcome == "completed"
    request = server.requests[0]
    assert request["response_format"] == {"type": "json_object"}
    assert json.dumps(SOP_ANSWER_SCHEMA, sort_keys=True) in request["messages"][0]["content"]


def test_a_draft_markdown_cannot_carry_still_succeeds_without_markdown(server):
    body = copy.deepcopy(good())
    body["steps"][0]["instructions"] = "Look at Grafana.\n## check: sneaky — not a step"
    server.push(answer(body))
    result = run(server.url)
    assert result.outcome == "completed" and result.spec is not None
    assert result.markdown is None and "markdown cannot carry this SOP" in result.markdown_error
    assert "no markdown:" in result.summary()


# --- without a model ----------------------------------------------------------------------------


MARKDOWN = """---
name: checkout-5xx
---

# Checkout returns 5xx

## check: errors — 5xx ratio

- promql: `sum(rate(http_requests_total{job="checkout",code=~"5.."}[5m]))`

## action: restart — Restart checkout

- action: rolloutRestart
- automation: auto
"""


def test_runbook_markdown_is_linted_without_a_model():
    result = analyse(MARKDOWN, None, "fallback")
    assert result.outcome == "lint-only" and result.succeeded
    assert result.name == "checkout-5xx" and result.spec.source is None and result.markdown
    assert {(f.rule, f.step) for f in result.findings} >= {
        ("promql-without-threshold", "errors"),
        ("unverified-action", "restart"),
        ("auto-without-approval", "restart"),
        ("no-escalation-step", None),
    }
    assert all(f.source == "lint" for f in result.findings)
    assert result.model is None and result.redaction == {} and "parsed and linted without one" in result.summary()


def test_prose_without_a_model_fails_saying_why():
    result = analyse(RUNBOOK, None, "from-wiki")
    assert result.outcome == "no-model" and not result.succeeded and result.spec is None
    assert result.error.startswith("no model is configured (AIOPS_LLM_BASE_URL)")
    assert "not runbook markdown" in result.error and "line " in result.error
