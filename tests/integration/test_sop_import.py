"""`aiops sop import` against a real API server: created, unchanged, configured, and nothing on an error."""

import os
import re
import subprocess
import sys

from aiops.sops import sopfile
from harness import REPO

LIBRARY = REPO / "sop-library"


def aiops(kubeconfig, *args):
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    cmd = [sys.executable, "-m", "aiops.cli", "sop", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def results(stdout):
    """{name: created|unchanged|configured} from lines like `sop.aiops.dev/oomkilled created`."""
    return dict(line.split("/", 1)[1].split(" ", 1) for line in stdout.splitlines())


def test_import_creates_updates_and_refuses(kubeconfig, kubectl, namespace, tmp_path):
    names = [p.stem for p in sopfile.runbook_files([LIBRARY])]
    first = aiops(kubeconfig, "import", str(LIBRARY), "-n", namespace)
    assert first.returncode == 0, first.stdout + first.stderr
    assert results(first.stdout) == dict.fromkeys(names, "created")
    stored = kubectl.get("sop", "oomkilled", namespace)
    text = (LIBRARY / "oomkilled.md").read_text()
    assert stored["spec"] == sopfile.parse(text).spec.wire() and stored["spec"]["source"] == text

    again = aiops(kubeconfig, "import", str(LIBRARY), "-n", namespace)
    assert results(again.stdout) == dict.fromkeys(names, "unchanged"), again.stdout + again.stderr

    # An edit that drops a field: the stored spec loses it too, rather than keeping the old value.
    edited = re.sub(r"escalation:\n(  .*\n)+", "", text.replace("# Container killed", "# Edited: container killed"))
    assert "afterMinutes" not in edited
    (tmp_path / "oomkilled.md").write_text(edited)
    changed = aiops(kubeconfig, "import", str(tmp_path / "oomkilled.md"), "-n", namespace)
    assert results(changed.stdout) == {"oomkilled": "configured"}, changed.stdout + changed.stderr
    spec = kubectl.get("sop", "oomkilled", namespace)["spec"]
    assert spec["title"].startswith("Edited") and "escalation" not in spec and spec["source"] == edited

    # One bad file in the set: nothing is imported, not even the good one beside it.
    (tmp_path / "oomkilled.md").unlink()
    (tmp_path / "fresh.md").write_text(text.replace("name: oomkilled", "name: fresh"))
    (tmp_path / "broken.md").write_text(
        text.replace("name: oomkilled", "name: broken").replace("rollbackDeployment", "rebootNode")
    )
    refused = aiops(kubeconfig, "import", str(tmp_path), "-n", namespace)
    assert refused.returncode == 1 and "broken.md:" in refused.stderr and "nothing imported" in refused.stderr
    assert kubectl.get("sop", "fresh", namespace) is None

    dry = aiops(kubeconfig, "import", "--dry-run", str(tmp_path / "fresh.md"), "-n", namespace)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    assert kubectl.get("sop", "fresh", namespace) is None
