"""The container image's inputs: every runtime dependency pinned in requirements.lock, a non-root image."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_dependency_is_pinned_in_the_lock():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [line for line in (REPO / "requirements.lock").read_text().splitlines() if line and line[0] != "#"]
    pinned = {name(line): line for line in lines}
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
    missing = [d for d in deps if name(d) not in pinned]
    assert not missing, f"not in requirements.lock (regenerate it, see its header): {missing}"


def test_image_runs_the_operator_as_a_non_root_user():
    text = (REPO / "Containerfile").read_text()
    assert re.search(r"^USER 1001:0$", text, re.M)
    assert 'ENTRYPOINT ["aiops"]' in text and 'CMD ["run"]' in text
    assert "-r requirements.lock" in text
