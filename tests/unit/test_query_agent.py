"""aiops.inference.agent against a scripted OpenAI-compatible server: tool calls in JSON and native mode, the
results fenced back, citations checked and repaired, tools outside the list refused, budgets, refusals."""

from __future__ import annotations

import json

import pytest

from aiops.inference import agent
from aiops.inference.gateway import GatewayConfig
from support.scripted_openai import ScriptedOpenAI, answer, content, status, tool_calls

PODS = agent.ToolSpec(
    "list_pods",
    "Pods of a namespace with their phase and restarts.",
    {
        "type": "object",
        "properties": {"namespace": {"type": "string", "maxLength": 63}},
        "required": ["namespace"],
        "additionalProperties": False,
    },
)
LOGS = agent.ToolSpec(
    "pod_logs",
    "The last lines of a pod's log.",
    {"type": "object", "properties": {"pod": {"type": "string"}, "tail": {"type": "integer"}}, "required": ["pod"]},
)
QUESTION = "Which pods restarted in shop today?"


class Tools:
    """run_tool for the agent: scripted outputs by tool name, every call recorded."""

    def __init__(self, **outputs: agent.ToolOutput):
        self.outputs, self.calls = outputs, []

    def __call__(self, name: str, arguments: dict) -> agent.ToolOutput:
        self.calls.append((name, arguments))
        return self.outputs[name]


RESTARTS = agent.ToolOutput(
    "ok", "NAME                READY  RESTARTS\ncheckout-7d9f-x2kqz  0/1    7\ncart-5c4b-aa1bc     1/1    0"
)


def run(server, tools, mode="json", budget=None, structured="json_schema"):
    config = GatewayConfig(
        base_url=server.url, model=server.model, backoff_base_s=0, max_transport_retries=0, structured_output=structured
    )
    return agent.answer(config, QUESTION, "namespace: shop", [PODS, LOGS], tools, budget or agent.Budget(), mode=mode)


def final(text: str, *cited: str, refusal: str | None = None) -> dict:
    return {"action": "answer", "answer": text, "citations": list(cited), "refusal": refusal}


def test_json_mode_calls_a_tool_then_answers_citing_it():
    tools = Tools(list_pods=RESTARTS)
    replies = [
        answer({"action": "call", "tool": "list_pods", "arguments": {"namespace": "shop"}}),
        answer(final("checkout-7d9f-x2kqz restarted 7 times; the other pods did not restart.", "c1")),
    ]
    with ScriptedOpenAI(*replies) as server:
        out = run(server, tools)
        first, second = server.requests
    assert out.status == "answered" and out.answer.citations == ["c1"], out
    assert tools.calls == [("list_pods", {"namespace": "shop"})]
    assert [c.id for c in out.cited()] == ["c1"] and out.calls[0].status == "ok" and out.steps == 2
    schema = first["response_format"]["json_schema"]["schema"]
    assert [o["properties"]["action"]["enum"] for o in schema["anyOf"]] == [["call"], ["call"], ["answer"]]
    assert "tools" not in first
    system, user = first["messages"][0]["content"], first["messages"][1]["content"]
    assert "- list_pods: Pods of a namespace with their phase and restarts. (namespace)" in system
    assert "- pod_logs: The last lines of a pod's log. (pod, tail?)" in system
    assert QUESTION in user and "namespace: shop" in user
    fed = second["messages"][-1]["content"]
    assert (
        fed.startswith("[[BEGIN TOOL_RESULT id=c1 tool=list_pods status=ok boundary=") and "checkout-7d9f-x2kqz" in fed
    )
    assert out.prompt_tokens == 200 and out.completion_tokens == 40


def test_native_tool_calling():
    tools = Tools(list_pods=RESTARTS, pod_logs=agent.ToolOutput("ok", "OOMKilled"))
    replies = [
        tool_calls(("list_pods", {"namespace": "shop"}), ("pod_logs", {"pod": "checkout-7d9f-x2kqz"})),
        answer(final("checkout-7d9f-x2kqz restarted 7 times after OOM kills.", "c1", "c2")),
    ]
    with ScriptedOpenAI(*replies) as server:
        out = run(server, tools, mode="native")
        first, second = server.requests
    assert out.status == "answered" and [c.tool for c in out.calls] == ["list_pods", "pod_logs"]
    assert [t["function"]["name"] for t in first["tools"]] == ["list_pods", "pod_logs"]
    assert "response_format" not in first
    assistant, *results = second["messages"][-3:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_1", "call_2"]
    assert [r["tool_call_id"] for r in results] == ["call_1", "call_2"]
    assert "id=c2 tool=pod_logs" in results[1]["content"] and "OOMKilled" in results[1]["content"]


def test_a_tool_outside_the_list_is_refused_and_never_run():
    tools = Tools(list_pods=RESTARTS)
    replies = [
        answer({"action": "call", "tool": "delete_pod", "arguments": {"pod": "checkout-7d9f-x2kqz"}}),
        answer({"action": "call", "tool": "list_pods", "arguments": {"namespace": "shop"}}),
        answer(final("checkout restarted 7 times.", "c2")),
    ]
    with ScriptedOpenAI(*replies) as server:
        out = run(server, tools, structured="json_object")  # no schema to constrain the reply
        second = server.requests[1]
    assert tools.calls == [("list_pods", {"namespace": "shop"})]
    refused = out.calls[0]
    assert refused.tool == "delete_pod" and refused.status == "refused" and "not one of the tools" in refused.output
    assert "status=refused" in second["messages"][-1]["content"]
    assert out.status == "answered"
    assert '"anyOf"' in server.requests[0]["messages"][0]["content"]  # json_object mode: the schema in the prompt


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (final("checkout restarted.", "c9"), "citations: c9 are not tool calls that returned a result; cite only: c1"),
        (final("checkout restarted."), "citations: cite the ids of the tool calls your answer relies on"),
    ],
)
def test_citations_are_checked_and_repaired(bad, problem):
    tools = Tools(list_pods=RESTARTS)
    replies = [
        answer({"action": "call", "tool": "list_pods", "arguments": {"namespace": "shop"}}),
        answer(bad),
        answer(final("checkout restarted 7 times.", "c1")),
    ]
    with ScriptedOpenAI(*replies) as server:
        out = run(server, tools)
        repair = server.requests[2]["messages"][-1]["content"]
    assert out.status == "answered" and out.problems == [f"step 2: {problem}"]
    assert problem in repair


def test_an_answer_without_any_tool_call_is_sent_back():
    replies = [answer(final("Probably checkout.")), content("not json"), answer(final("No pods restarted.", "c1"))]
    with ScriptedOpenAI(*replies) as server:
        out = run(server, Tools(), budget=agent.Budget(steps=3))
    assert out.status == "budget" and out.answer is None
    assert "call a tool first" in out.problems[0] and "not one JSON object" in out.problems[1]
    assert "step budget (3 model replies) ran out" in out.error


def test_the_model_may_refuse():
    with ScriptedOpenAI(answer(final("I only read the cluster.", refusal="it asks to delete pods"))) as server:
        out = run(server, Tools())
    assert out.status == "refused" and out.answer.refusal == "it asks to delete pods" and out.calls == []


def test_token_budget():
    tools = Tools(list_pods=RESTARTS)
    call = answer({"action": "call", "tool": "list_pods", "arguments": {"namespace": "shop"}}, prompt_tokens=900)
    with ScriptedOpenAI(call, call, call) as server:
        out = run(server, tools, budget=agent.Budget(tokens=1500))
    assert out.status == "budget" and "token budget (1500)" in out.error and len(out.calls) == 2


def test_unreachable_server_is_an_outcome():
    with ScriptedOpenAI(status(400, message="model not found")) as server:
        out = run(server, Tools())
    assert out.status == "unreachable" and "model not found" in out.error


def test_the_step_schema_keeps_each_tools_arguments():
    schema = agent.step_schema([PODS, LOGS])
    call_pods, call_logs, final_answer = schema["anyOf"]
    assert call_pods["properties"]["tool"] == {"type": "string", "enum": ["list_pods"]}
    assert call_pods["properties"]["arguments"]["properties"]["namespace"]["maxLength"] == 63
    assert call_logs["properties"]["arguments"]["required"] == ["pod", "tail"]  # strict: optional -> required + null
    assert final_answer["required"] == ["action", "answer", "citations", "refusal"]
    assert "maxLength" not in json.dumps(agent.step_schema([PODS], bounds=False))


def test_a_repeated_call_is_not_run_again():
    tools = Tools(list_pods=RESTARTS)
    pods = {"action": "call", "tool": "list_pods", "arguments": {"namespace": "shop"}}
    with ScriptedOpenAI(answer(pods), answer(pods), answer(final("checkout restarted 7 times.", "c1"))) as server:
        out = run(server, tools)
        fed = server.requests[2]["messages"][-1]["content"]
    assert tools.calls == [("list_pods", {"namespace": "shop"})]
    assert [(c.id, c.status) for c in out.calls] == [("c1", "ok"), ("c2", "repeated")] and out.status == "answered"
    assert "the same call as c1 (status ok): its result is above" in fed


def test_opening_calls_are_run_first_and_cited_like_the_models_own():
    tools = Tools(list_pods=RESTARTS, pod_logs=agent.ToolOutput("error", "no pod 'x'"))
    with ScriptedOpenAI(answer(final("checkout-7d9f-x2kqz restarted 7 times.", "c1"))) as server:
        config = GatewayConfig(base_url=server.url, model=server.model, backoff_base_s=0, max_transport_retries=0)
        opening = [("list_pods", {"namespace": "shop"}), ("pod_logs", {"pod": "x"})]
        out = agent.answer(config, QUESTION, None, [PODS, LOGS], tools, opening=opening)
        (first,) = server.requests
    assert tools.calls == opening and [c.id for c in out.calls] == ["c1", "c2"]
    assert out.status == "answered" and out.steps == 1 and [c.id for c in out.cited()] == ["c1"]
    user = first["messages"][1]["content"]
    assert "[[BEGIN TOOL_RESULT id=c1 tool=list_pods status=ok" in user and "checkout-7d9f-x2kqz" in user
    assert "[[BEGIN TOOL_RESULT id=c2 tool=pod_logs status=error" in user and "cite them" in user
