"""`aiops-dev demo`: the main job end to end on a local control plane.

Starts etcd + kube-apiserver, installs the CRDs, writes a Deployment whose pods are being
OOMKilled (as its controllers and kubelet would show it), serves a real small model on
loopback, runs the operator, applies the example ManagedCluster, SOP and Incident with
kubectl, waits for the diagnosis and prints `kubectl describe incident`. Then it plays the on-call
engineer: the SOP's checks have run and its rollback waits for an approval, which the demo gives
with `kubectl patch` as the control plane's admin, through the operator's admission webhook (on loopback,
registered by the operator itself), which checks who sends it and seals it; the operator rolls the
Deployment back (dry run first, audited) and starts the verification, and the demo prints the Incident again.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiops.api import KINDS
from aiops_dev import crdgen
from aiops_dev.controlplane import ADMIN, REPO_ROOT, ControlPlane, cache_root, free_port
from aiops_dev.eval import cases
from aiops_dev.eval.workloads import Writer
from aiops_dev.localmodel import DEMO_MODEL, start_server

EXAMPLES = ("00-managedcluster-hub.yaml", "10-sop-oomkilled.yaml", "20-incident-oomkilled.yaml")
INCIDENT = "checkout-oomkilled"
SCENARIO = "checkout-oomkilled"  # aiops_dev/eval/scenarios/: the failing checkout the Incident is about
WAIT_S = 900  # a CPU-only model needs minutes on 2 cores


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def kubectl(env: dict, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(["kubectl", *args], env=env, input=input, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def wait_for_diagnosis(env: dict, namespace: str, deadline: float, operator: subprocess.Popen, log: Path) -> dict:
    """Polls the Incident until it is diagnosed or failed (or the operator dies), printing each phase."""
    last = None
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise RuntimeError(f"the operator exited ({operator.returncode}); see {log}")
        obj = json.loads(kubectl(env, "get", "incident", INCIDENT, "-n", namespace, "-o", "json"))
        phase = (obj.get("status") or {}).get("phase")
        if phase != last:
            say(f"incident/{INCIDENT} phase: {phase or '(none yet)'}")
            last = phase
        if phase in ("Diagnosed", "Remediating", "Escalated", "Resolved", "Failed"):
            return obj
        time.sleep(1)
    raise RuntimeError(f"incident/{INCIDENT} still {last} after {WAIT_S}s; see {log}")


def wait_for_step(env: dict, namespace: str, step: str, states: tuple[str, ...], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        obj = json.loads(kubectl(env, "get", "incident", INCIDENT, "-n", namespace, "-o", "json"))
        steps = {s["id"]: s for s in ((obj.get("status") or {}).get("sop") or {}).get("steps", [])}
        if step in steps and steps[step]["state"] in states:
            return obj
        time.sleep(1)
    raise RuntimeError(f"incident/{INCIDENT}: SOP step {step} not {' or '.join(states)} after {timeout_s:.0f}s")


def approve_rollback(env: dict, namespace: str) -> None:
    """What the on-call engineer does once the diagnosis convinces them."""
    wait_for_step(env, namespace, "rollback", ("AwaitingApproval",))
    say(f"the SOP's checks ran; its rollback waits for a person: kubectl describe incident {INCIDENT} -n {namespace}")
    print(kubectl(env, "describe", "incident", INCIDENT, "-n", namespace))
    patch = json.dumps({"spec": {"approvals": [{"step": "rollback", "approvedBy": ADMIN}]}})  # who kubectl is
    say(f"approving: kubectl -n {namespace} patch incident {INCIDENT} --type merge -p '{patch}'")
    kubectl(env, "-n", namespace, "patch", "incident", INCIDENT, "--type", "merge", "-p", patch)
    wait_for_step(env, namespace, "verify", ("Running", "Succeeded", "Failed"))
    image = kubectl(env, "-n", namespace, "get", "deploy", "checkout", "-o", "jsonpath={..containers[0].image}")
    say(f"rolled back: Deployment checkout now runs {image}")


def start_model(workdir: Path) -> tuple[subprocess.Popen, str]:
    """The local model server on a free port; returns it and its base URL once it answers."""
    port = free_port()
    log = workdir / "model.log"
    say(f"serving {DEMO_MODEL} on 127.0.0.1:{port} (first run downloads ~1.1 GB; log: {log})")
    return start_server(DEMO_MODEL, port, log), f"http://127.0.0.1:{port}/v1"


def demo(keep: bool = False, model: bool = True) -> int:
    plane = ControlPlane(workdir=cache_root() / "dev" / "aiops-dev", name="aiops-dev")
    started_here = not plane.running()
    if started_here:
        plane.stop(remove=True)
        say(f"starting etcd + kube-apiserver on 127.0.0.1 (state in {plane.workdir})")
        plane.start(detach=True)
    else:
        say(f"reusing the running control plane in {plane.workdir}")
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "PYTHONUNBUFFERED": "1"}
    # A fresh namespace per run: without a namespace controller, deleted namespaces never go away.
    namespace = f"shop-{uuid.uuid4().hex[:5]}"
    operator = model_server = None
    try:
        say("installing the CRDs generated from the models")
        kubectl(env, "apply", "-f", "-", input="---\n".join(crdgen.render(k) for k in KINDS))
        kubectl(
            env, "wait", "--for=condition=established", "--timeout=60s", *[f"crd/{k.plural}.aiops.dev" for k in KINDS]
        )

        kubectl(env, "create", "namespace", namespace)
        say(f"writing Deployment {namespace}/checkout: revision 2 is OOMKilled over and over")
        from kubernetes import config

        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        cases.write(SCENARIO, Writer(api, namespace))
        api.close()

        if model:
            model_server, base_url = start_model(plane.workdir)
            env.update(AIOPS_LLM_BASE_URL=base_url, AIOPS_LLM_MODEL=DEMO_MODEL)
        # The approvals webhook (docs/security.md), as the chart runs it, but self-signed on loopback.
        env.update(
            AIOPS_ADMISSION_ADDR=f"127.0.0.1:{free_port()}",
            AIOPS_ADMISSION_MANAGED="approvals.aiops.dev",
            AIOPS_APPROVAL_KEY=secrets.token_urlsafe(32),
        )
        log = plane.workdir / "operator.log"
        say(f"starting the operator (log: {log})")
        with open(log, "ab") as out:
            operator = subprocess.Popen(
                [sys.executable, "-m", "aiops.cli", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        for name in EXAMPLES:
            say(f"kubectl apply -n {namespace} -f examples/{name}")
            print(kubectl(env, "apply", "-n", namespace, "-f", str(REPO_ROOT / "examples" / name)).strip())
        wait_for_diagnosis(env, namespace, time.monotonic() + WAIT_S, operator, log)
        time.sleep(1)  # Events are posted asynchronously right after the status write

        say(f"kubectl get aiops -n {namespace}")
        print(kubectl(env, "get", "aiops", "-n", namespace))
        approve_rollback(env, namespace)
        time.sleep(1)
        say(f"kubectl describe incident {INCIDENT} -n {namespace}")
        print(kubectl(env, "describe", "incident", INCIDENT, "-n", namespace))
        return 0
    finally:
        for proc in (operator, model_server):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        if keep or not started_here:
            say(f"control plane left running: export KUBECONFIG={plane.kubeconfig}  (stop: aiops-dev cluster down)")
        else:
            plane.stop(remove=True)
            say("control plane stopped")
