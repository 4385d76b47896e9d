"""Create an AnalysisRun and follow it until it ends, saying on stderr how it progresses: what `aiops ask` and
`aiops review` share. The work is the operator's; a command only hands it over and waits."""

from __future__ import annotations

import time
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException

from aiops import API_VERSION
from aiops.api import ANALYSIS_RUN
from aiops.core import kube

POLL_S = 1.0
DONE = ("Succeeded", "Failed")


def run_to_end(command: str, body: dict[str, Any], namespace: str, timeout: float, err: TextIO) -> dict | None:
    """The run as it ended; None (after saying why on `err`) when it could not be created, read, or did not end
    within `timeout` seconds."""
    api = kube.custom()
    group, version = API_VERSION.split("/")
    where = (group, version, namespace, ANALYSIS_RUN.plural)
    try:
        created = api.create_namespaced_custom_object(*where, body)
    except ApiException as exc:
        print(f"aiops {command}: cannot create the AnalysisRun in {namespace}: {exc.status} {exc.reason}", file=err)
        return None
    name = created["metadata"]["name"]
    print(f"AnalysisRun {namespace}/{name} created; waiting for the operator ...", file=err)
    deadline, seen = time.monotonic() + timeout, None
    while True:
        try:
            run = api.get_namespaced_custom_object(*where, name)
        except ApiException as exc:
            print(f"aiops {command}: cannot read AnalysisRun {namespace}/{name}: {exc.status} {exc.reason}", file=err)
            return None
        phase = (run.get("status") or {}).get("phase")
        if phase != seen:
            print(f"  {phase or 'Pending'}", file=err)
            seen = phase
        if phase in DONE:
            return run
        if time.monotonic() > deadline:
            print(
                f"aiops {command}: the run did not end within {timeout:g}s; it goes on: "
                f"kubectl get analysisrun {name} -n {namespace}",
                file=err,
            )
            return None
        time.sleep(POLL_S)
