"""Examples a test can keep for the docs and closing notes (a describe, a prompt, a stored postmortem).

They are written only when AIOPS_TEST_ARTIFACTS names a folder, never by default: a test writes nothing outside
its tmp_path on CI or on a developer's machine.
"""

from __future__ import annotations

import os
from pathlib import Path


def keep(name: str, text: str) -> None:
    """Writes `text` to AIOPS_TEST_ARTIFACTS/name when that variable is set."""
    folder = os.environ.get("AIOPS_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_text(text)
