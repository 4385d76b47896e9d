"""The tool registry: OpenAI definitions from the argument models, and call() that answers every mistake with
an error result naming what to fix, never an exception."""

from __future__ import annotations

import json

import pytest
from pydantic import Field

from aiops.tools import REGISTRY, Registry, Status, Tool, ToolContext, ToolError, ToolResult
from aiops.tools.context import Args


class EchoArgs(Args):
    text: str = Field(min_length=1)
    times: int = Field(default=1, ge=1, le=3)


def echo(ctx, args: EchoArgs) -> ToolResult:
    if args.text == "boom":
        raise RuntimeError("the backend exploded")
    if args.text == "refuse":
        raise ToolError("refused: ask for something else")
    return ToolResult.ok("echo", args.text * args.times)


TOOLS = Registry([Tool("echo", "Repeats text.", EchoArgs, echo, max_chars=50)])


@pytest.fixture
def ctx() -> ToolContext:
    return ToolContext(api=None)


def test_definitions_are_openai_functions_with_the_models_schemas():
    definitions = REGISTRY.definitions()
    names = [d["function"]["name"] for d in definitions]
    assert len(names) == len(set(names)) >= 17
    for d in definitions:
        assert d["type"] == "function" and d["function"]["description"]
        params = d["function"]["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        json.dumps(params)  # JSON-ready, as both OpenAI and MCP need
    (k8s_get,) = [d for d in definitions if d["function"]["name"] == "k8s_get"]
    assert set(k8s_get["function"]["parameters"]["required"]) == {"kind", "name"}


def test_a_valid_call_runs_the_tool(ctx):
    result = TOOLS.call("echo", '{"text": "ab", "times": 2}', ctx)
    assert (result.status, result.text) == (Status.OK, "abab")
    assert TOOLS.call("echo", {"text": "x"}, ctx).text == "x"


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ('{"text": ', "arguments are not JSON"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('{"times": 2}', "text: Field required"),
        ('{"text": "a", "times": 9}', "times: Input should be less than or equal to 3"),
        ('{"text": "a", "color": "red"}', "color: Extra inputs are not permitted"),
    ],
)
def test_bad_arguments_are_an_error_naming_the_field(ctx, arguments, words):
    result = TOOLS.call("echo", arguments, ctx)
    assert result.status == Status.ERROR and words in result.text


def test_an_unknown_tool_names_the_tools(ctx):
    result = TOOLS.call("rm_rf", "{}", ctx)
    assert result.status == Status.ERROR and "the tools are: echo" in result.text


def test_a_failing_tool_is_an_error_result_not_an_exception(ctx):
    crashed = TOOLS.call("echo", {"text": "boom"}, ctx)
    assert crashed.status == Status.ERROR and "RuntimeError: the backend exploded" in crashed.text
    refused = TOOLS.call("echo", {"text": "refuse"}, ctx)
    assert (refused.status, refused.text) == (Status.ERROR, "refused: ask for something else")


def test_results_are_capped_by_the_tools_own_limit(ctx):
    result = TOOLS.call("echo", {"text": "line\n" * 40, "times": 1}, ctx)
    assert result.status == Status.TRUNCATED and "the cap of 50" in result.note


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        Registry([Tool("echo", "", EchoArgs, echo), Tool("echo", "", EchoArgs, echo)])


def test_arguments_nested_too_deep_are_an_error_not_a_crash():
    from aiops.tools import REGISTRY, Status, ToolContext

    result = REGISTRY.call("k8s_list", "[" * 100_000, ToolContext(api=None))
    assert result.status == Status.ERROR and result.text.startswith("arguments are not JSON (RecursionError)")
