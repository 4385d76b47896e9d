"""The tools by name: argument model, description, function and size cap, defined once for every caller.

`definitions()` gives them as OpenAI tool-calling definitions (the `query` run's agent); the MCP server
lists the same argument schemas as its tools' input schemas. `call()` never raises: an unknown tool,
arguments that are not JSON or do not fit the model, and a tool that fails all come back as a
ToolResult with status error that says what to change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from aiops.clusters.words import short
from aiops.tools.context import Args, ToolContext
from aiops.tools.result import DEFAULT_MAX_CHARS, ToolError, ToolResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[Args]
    fn: Callable[[ToolContext, Any], ToolResult]
    max_chars: int = DEFAULT_MAX_CHARS

    def schema(self) -> dict[str, Any]:
        return schema_of(self.args)


def schema_of(args: type[Args]) -> dict[str, Any]:
    """The arguments' JSON schema, as an OpenAI function's `parameters` and an MCP tool's `inputSchema`; without
    pydantic's titles, which only repeat the names (tokens in every request of an agent)."""
    schema = args.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def validation_words(exc: ValidationError) -> str:
    """Each problem as `field: message`, the way a caller fixes its arguments."""
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


class Registry:
    def __init__(self, tools: Iterable[Tool]):
        self.tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self.tools:
                raise ValueError(f"tool {tool.name!r} is registered twice")
            self.tools[tool.name] = tool

    def definitions(self) -> list[dict[str, Any]]:
        """OpenAI tool-calling definitions (`tools=` of a chat completion)."""
        return [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.schema()}}
            for t in self.tools.values()
        ]

    def parse(self, name: str, arguments: str | dict[str, Any] | None) -> tuple[Tool, Args] | ToolResult:
        """The tool and its validated arguments, or the error result that says what is wrong with them."""
        tool = self.tools.get(name)
        if tool is None:
            return ToolResult.error(name, f"no tool {name!r}; the tools are: {', '.join(self.tools)}")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." deeper than the parser goes
                return ToolResult.error(name, f"arguments are not JSON ({type(exc).__name__}): send one JSON object")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return ToolResult.error(name, f"arguments must be a JSON object, not {type(arguments).__name__}")
        try:
            return tool, tool.args.model_validate(arguments)
        except ValidationError as exc:
            return ToolResult.error(name, f"bad arguments: {validation_words(exc)}")

    def run(self, tool: Tool, args: Args, ctx: ToolContext) -> ToolResult:
        """Runs one tool on validated arguments: its result redacted and capped, a failure an error result."""
        try:
            result = tool.fn(ctx, args)
        except ToolError as exc:
            result = ToolResult.error(tool.name, str(exc))
        except Exception as exc:  # noqa: BLE001  (a tool that fails is an answer the caller can act on)
            log.warning("tool %s failed: %s: %s", tool.name, type(exc).__name__, exc, exc_info=True)
            result = ToolResult.error(tool.name, f"{tool.name} failed: {type(exc).__name__}: {short(exc)}")
        return result.finished(ctx.redactor, tool.max_chars)

    def call(self, name: str, arguments: str | dict[str, Any] | None, ctx: ToolContext) -> ToolResult:
        """parse() then run(): what a model's tool call gets back, never an exception."""
        parsed = self.parse(name, arguments)
        if isinstance(parsed, ToolResult):
            return parsed.finished(ctx.redactor, DEFAULT_MAX_CHARS)
        return self.run(*parsed, ctx)
