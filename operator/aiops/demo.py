"""`aiops demo`: the main job end to end on a local control plane.

Starts etcd + kube-apiserver, installs the CRDs, runs the operator, applies the example
ManagedCluster, SOP and Incident with kubectl, waits for the operator to act, and prints
`kubectl describe incident`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import crdgen
from .api import KINDS
from .devcluster import REPO_ROOT, ControlPlane, cache_root

EXAMPLES = ("00-managedcluster-hub.yaml", "10-sop-oomkilled.yaml", "20-incident-oomkilled.yaml")
INCIDENT = "checkout-oomkilled"
NAMESPACE = "default"
WAIT_S = 120


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def kubectl(env: dict, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(["kubectl", *args], env=env, input=input, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def wait_for_operator(env: dict, deadline: float, operator: subprocess.Popen, log: Path) -> dict:
    """Polls the Incident until its phase leaves New (or the operator dies)."""
    last = None
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise RuntimeError(f"the operator exited ({operator.returncode}); see {log}")
        obj = json.loads(kubectl(env, "get", "incident", INCIDENT, "-n", NAMESPACE, "-o", "json"))
        phase = (obj.get("status") or {}).get("phase")
        if phase != last:
            say(f"incident/{INCIDENT} phase: {phase or '(none yet)'}")
            last = phase
        if phase not in (None, "New"):
            return obj
        time.sleep(0.5)
    raise RuntimeError(f"incident/{INCIDENT} still {last} after {WAIT_S}s; see {log}")


def demo(keep: bool = False) -> int:
    plane = ControlPlane(workdir=cache_root() / "dev" / "aiops-dev", name="aiops-dev")
    started_here = not plane.running()
    if started_here:
        plane.stop(remove=True)
        say(f"starting etcd + kube-apiserver on 127.0.0.1 (state in {plane.workdir})")
        plane.start(detach=True)
    else:
        say(f"reusing the running control plane in {plane.workdir}")
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "PYTHONUNBUFFERED": "1"}
    operator = None
    try:
        say("installing the CRDs generated from the models")
        kubectl(env, "apply", "-f", "-", input="---\n".join(crdgen.render(k) for k in KINDS))
        kubectl(
            env, "wait", "--for=condition=established", "--timeout=60s", *[f"crd/{k.plural}.aiops.dev" for k in KINDS]
        )

        log = plane.workdir / "operator.log"
        say(f"starting the operator (log: {log})")
        with open(log, "ab") as out:
            operator = subprocess.Popen(
                [sys.executable, "-m", "aiops.cli", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

        # Start from a clean slate so the run shows the whole story.
        kubectl(env, "delete", "incident", INCIDENT, "-n", NAMESPACE, "--ignore-not-found", "--wait=true")
        for name in EXAMPLES:
            say(f"kubectl apply -f examples/{name}")
            print(kubectl(env, "apply", "-n", NAMESPACE, "-f", str(REPO_ROOT / "examples" / name)).strip())
        wait_for_operator(env, time.monotonic() + WAIT_S, operator, log)
        time.sleep(1)  # Events are posted asynchronously right after the status write

        say(f"kubectl get aiops -n {NAMESPACE}")
        print(kubectl(env, "get", "aiops", "-n", NAMESPACE))
        say(f"kubectl describe incident {INCIDENT}")
        print(kubectl(env, "describe", "incident", INCIDENT, "-n", NAMESPACE))
        return 0
    finally:
        if operator and operator.poll() is None:
            operator.terminate()
            operator.wait(timeout=30)
        if keep or not started_here:
            say(f"control plane left running: export KUBECONFIG={plane.kubeconfig}  (stop: aiops dev down)")
        else:
            plane.stop(remove=True)
            say("control plane stopped")
