"""Cutting a document into chunks the embedding model reads whole, and refusing what is not a document.

The model reads 256 word pieces at most (about 1,000 characters of English); a chunk is at most
CHUNK_CHARS, cut at a Markdown heading, else a blank line, else a line break, else a space.
"""

from __future__ import annotations

import re

CHUNK_CHARS = 900
MAX_DOCUMENT_CHARS = 1_000_000  # a runbook or a postmortem is far smaller: larger is a mistake, not knowledge
MAX_CHUNKS = 400
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.M)
_HEADING = re.compile(r"^#{1,6}\s", re.M)


class DocumentError(ValueError):
    """The document cannot be indexed; the message says why and what to do."""


def check(text: str, where: str) -> None:
    """Raises DocumentError for text that is too large, binary, or Markdown with an unclosed code fence."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise DocumentError(
            f"{where}: {len(text):,} characters, more than the {MAX_DOCUMENT_CHARS:,} a document may have: "
            f"split it into several documents"
        )
    sample = text[:65_536]
    control = sum(1 for c in sample if c < " " and c not in "\t\n\r\f")
    if "\x00" in sample or "\ufffd" in sample or control > len(sample) // 100:
        raise DocumentError(f"{where}: binary content (NUL, control or undecodable bytes): index text documents only")
    fences = _FENCE.findall(text)
    if len(fences) % 2:
        line = text[: list(_FENCE.finditer(text))[-1].start()].count("\n") + 1
        raise DocumentError(f"{where}: broken Markdown: the code fence opened at line {line} is never closed")


def _split(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    for pattern in (_HEADING, re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r" ")):
        cuts = [m.start() for m in pattern.finditer(text) if 0 < m.start() < len(text)]
        if cuts:
            # The cut nearest the middle, so both halves shrink.
            cut = min(cuts, key=lambda c: abs(c - len(text) // 2))
            return _split(text[:cut], limit) + _split(text[cut:], limit)
    return [text[i : i + limit] for i in range(0, len(text), limit)]


def _merge(pieces: list[str], limit: int) -> list[str]:
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) + len(piece) <= limit:
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def chunks(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """The text in pieces of at most `limit` characters, neighbours merged back while they fit; no empty piece."""
    parts = [p.strip() for p in _merge(_split(text.strip(), limit), limit)]
    found = [p for p in parts if p]
    if len(found) > MAX_CHUNKS:
        raise DocumentError(f"{len(found)} chunks, more than {MAX_CHUNKS}: split the document")
    return found
