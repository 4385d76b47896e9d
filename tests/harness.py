"""Test harness: kubectl, waiting, the operator as a real process, and the test-context guard."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from aiops_dev.eval import cases

REPO = Path(__file__).resolve().parents[1]
# Context names that are safe to fill with test objects.
TEST_CONTEXT = re.compile(r"^(kind-|k3d-|aiops-)|test", re.IGNORECASE)


def guard_test_context(kubeconfig: str) -> str:
    """The current context of an external kubeconfig, refusing one that is not meant for tests."""
    data = yaml.safe_load(Path(kubeconfig).read_text())
    context = data.get("current-context") or ""
    if not TEST_CONTEXT.search(context):
        raise RuntimeError(
            f"refusing context {context!r} of {kubeconfig}: the suite creates and deletes objects; "
            "use a context named kind-*, k3d-*, aiops-* or containing 'test'"
        )
    return context


class Kubectl:
    def __init__(self, kubeconfig: str, cache_dir: Path | None = None):
        self.env = {**os.environ, "KUBECONFIG": kubeconfig}
        if cache_dir:
            self.env["KUBECACHEDIR"] = str(cache_dir)

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["kubectl", *args], input=input, env=self.env, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def apply(
        self, manifest: dict | str, namespace: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        ns = ["-n", namespace] if namespace else []
        return self("apply", *ns, "-f", "-", input=text, check=check)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        ns = ["-n", namespace] if namespace else []
        proc = self("get", kind, name, *ns, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def wait(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        until: Callable[[dict], Any] = lambda obj: obj.get("status"),
        timeout: float = 30,
        what: str = "",
    ) -> dict:
        """Polls the object until `until(obj)` holds (by default: it has a status) and returns it."""

        def check() -> dict | None:
            obj = self.get(kind, name, namespace)
            return obj if obj and until(obj) else None

        return wait_for(check, timeout, f"{kind}/{name}: {what or 'a status'}")

    def events(self, namespace: str, name: str) -> list[dict]:
        items = self.json("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")["items"]
        return sorted(items, key=lambda e: e.get("firstTimestamp") or e.get("eventTime") or "")


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def condition(obj: dict | None, type_: str = "Ready") -> dict | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return None


class OperatorProcess:
    """`aiops run` (or another kopf-based command, e.g. `aiops worker`) as a child process, as a user would run it."""

    def __init__(
        self, kubeconfig: str, log_path: Path, env: dict[str, str] | None = None, command: tuple[str, ...] = ("run",)
    ):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = env or {}
        self.command = command
        self.proc: subprocess.Popen | None = None
        self.started_at = 0  # the log's size when the last start began: its lines since are this run's

    def start(self, env: dict[str, str] | None = None, until: str = "Initial authentication has finished") -> None:
        """Starts `aiops run` and waits for the log line `until` (a standby never logs in to kopf);
        `env` replaces the operator configuration given at construction."""
        if env is not None:
            self.env = env
        self.started_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aiops.cli", *self.command], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        wait_for(
            lambda: until in self.log(since_start=True) or self.proc.poll() is not None,
            30,
            "the operator to log in",
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited at start:\n{self.log()}")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stacks(self, lines: int = 400) -> str:
        """Every thread's stack (the CLI dumps them on SIGUSR1), with the log lines before them."""
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        return "\n".join(self.log(since_start=True).splitlines()[-lines:])

    def log(self, since_start: bool = False) -> str:
        """The log; `since_start`: only what the process started last wrote (earlier runs share the file)."""
        with open(self.log_path, "rb") as f:
            f.seek(self.started_at if since_start else 0)
            return f.read().decode(errors="replace")


def phase(obj: dict) -> str | None:
    return (obj.get("status") or {}).get("phase")


def ready_reason(obj: dict) -> str | None:
    cond = condition(obj)
    return cond["reason"] if cond else None


def rollback_sop(name: str, title: str, **spec: Any) -> dict:
    """An SOP of one automatic, approved `rollbackDeployment` step (id `rollback`), `spec` fields added."""
    step = {"id": "rollback", "type": "action", "title": "Roll back to the previous revision",
            "action": {"type": "rollbackDeployment"}, "automation": "auto", "approvalRequired": True}  # fmt: skip
    return {"apiVersion": "aiops.dev/v1alpha1", "kind": "SOP", "metadata": {"name": name},
            "spec": {"title": title, **spec, "steps": [step]}}  # fmt: skip


def checkout_incident(name: str, **spec: Any) -> dict:
    """The Incident of scenario checkout-oomkilled (about Deployment/checkout) named `name`, `spec` fields added;
    critical, as the tests' SOPs and metrics expect."""
    incident = cases.load("checkout-oomkilled").incident_manifest(name=name)
    incident["spec"].update({"severity": "critical", **spec})
    return incident


OPERATOR_NS = "aiops-system"  # the operator's default namespace: kubeconfig Secrets without a namespace live here


def kubeconfig_for_secret(path: str | Path, token: str | None = None) -> bytes:
    """The kubeconfig with its CA inlined (as a Secret would carry it), optionally with another token."""
    data = yaml.safe_load(Path(path).read_text())
    cluster = data["clusters"][0]["cluster"]
    if ca := cluster.pop("certificate-authority", None):
        cluster["certificate-authority-data"] = base64.b64encode(Path(ca).read_bytes()).decode()
    if token is not None:
        data["users"][0]["user"]["token"] = token
    return yaml.safe_dump(data).encode()


def put_secret(kubectl, name: str, data: dict[str, bytes]) -> None:
    kubectl("create", "namespace", OPERATOR_NS, check=False)
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": OPERATOR_NS},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
    )


def managed_cluster(name: str, secret: str | None = None, **spec) -> dict:
    if secret:
        spec["kubeconfigSecretRef"] = {"name": secret, "key": "kubeconfig"}
    return {"apiVersion": "aiops.dev/v1alpha1", "kind": "ManagedCluster", "metadata": {"name": name}, "spec": spec}


def symptom_incident(name: str) -> dict:
    """An Incident with no target: its analysis ends quickly in a stated failure, all that restart and
    failover tests need."""
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {"title": f"symptom {name}", "severity": "warning", "analysis": {"llm": False}},
    }


def aiops_cli(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess:
    """`aiops ARGS` as a user runs it: none of this process's AIOPS_* settings, the history at `dsn`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    if dsn:
        env["AIOPS_POSTGRES_DSN"] = dsn
    return subprocess.run([sys.executable, "-m", "aiops.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
