"""What every tool returns: a typed `ToolResult`, capped in size, redacted, ready to be fenced as untrusted data.

A tool's text comes from the cluster, its logs and its telemetry: whoever reads it (a model in a `query`
run, an MCP client's model) must treat it as data, never as instructions. `fenced()` puts it inside a
block whose boundary is fresh per request, with the same marker lines as the diagnosis prompts
(aiops.inference.prompts.fence), so a line in the data cannot close its block.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from aiops.diagnosis.redaction import Redactor
from aiops.inference.injection import defang
from aiops.inference.prompts import fence, new_boundary

DEFAULT_MAX_CHARS = 16_000
MARKER_ROOM = 120  # characters kept free for the line that says where the text was cut


class ToolError(Exception):
    """A tool that cannot answer, in words for the caller: what failed, where, and what to do instead.
    The registry turns it into an error result with exactly this message."""


class Status(StrEnum):
    OK = "ok"
    EMPTY = "empty"  # the query ran and found nothing: an answer, not a failure
    ERROR = "error"  # the tool could not answer; `text` says what failed, where and what to do
    TRUNCATED = "truncated"  # an answer with something left out; `note` says what and how to narrow it


class ToolResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    tool: str
    status: Status
    text: str
    note: str | None = None  # why it is empty, truncated or failed, in words

    @classmethod
    def ok(cls, tool: str, text: str, note: str | None = None) -> ToolResult:
        """An answer; with a note (a source that read only part of the window) it counts as truncated."""
        return cls(tool=tool, status=Status.TRUNCATED if note else Status.OK, text=text, note=note)

    @classmethod
    def empty(cls, tool: str, why: str) -> ToolResult:
        return cls(tool=tool, status=Status.EMPTY, text=why, note=why)

    @classmethod
    def error(cls, tool: str, why: str) -> ToolResult:
        return cls(tool=tool, status=Status.ERROR, text=why, note=why)

    def finished(self, redactor: Redactor, max_chars: int) -> ToolResult:
        """Redacted, instructions to a model cut out (aiops.inference.injection), then cut to at most `max_chars`
        at a line break, the cut said in `note` and in the text."""
        text, note = defang(redactor.redact(self.text)), redactor.redact(self.note) if self.note else None
        if len(text) <= max_chars:
            return self.model_copy(update={"text": text, "note": note})
        room = max(max_chars - MARKER_ROOM, max_chars // 2)  # the marker line fits in the cap too
        cut = text.rfind("\n", 0, room)
        kept = text[: cut if cut > room // 2 else room]
        said = f"output cut at {len(kept)} of {len(text)} characters (the cap of {max_chars}): narrow the query"
        status = self.status if self.status == Status.ERROR else Status.TRUNCATED
        note = f"{note}; {said}" if note else said
        return self.model_copy(update={"status": status, "text": f"{kept}\n[{said}]", "note": note})

    def fenced(self, boundary: str | None = None) -> str:
        """The result as one block of untrusted data: `[[BEGIN TOOL_RESULT tool=... status=... boundary=...]]`."""
        return fence("TOOL_RESULT", boundary or new_boundary(), self.text, f" tool={self.tool} status={self.status}")
