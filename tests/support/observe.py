"""Watching the operator from outside, as the suite counts its work: every diagnosis an Incident showed (a
watch), and the figures of its /metrics."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

import urllib3
from kubernetes import client, config, watch


class DiagnosisLog:
    """Watches the namespace's Incidents and keeps every distinct diagnosedAt each one showed: a second
    diagnosis of one Incident would show a second value."""

    def __init__(self, kubeconfig: str, namespace: str):
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.namespace = namespace
        self.diagnosed_at: dict[str, set[str]] = {}
        self._watch = watch.Watch()
        self._stopped = False
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def _follow(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        while not self._stopped:  # again after the API server (or etcd) restarted
            try:
                stream = self._watch.stream(custom.list_namespaced_custom_object, "aiops.dev", "v1alpha1",
                                            self.namespace, "incidents", timeout_seconds=600)  # fmt: skip
                for event in stream:
                    obj = event["object"]
                    if at := (obj.get("status") or {}).get("diagnosedAt"):
                        self.diagnosed_at.setdefault(obj["metadata"]["name"], set()).add(at)
            except (urllib3.exceptions.HTTPError, client.ApiException):
                time.sleep(0.5)

    def __enter__(self) -> DiagnosisLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1)  # the last events reach the watch
        self._stopped = True
        self._watch.stop()
        self.api.close()


def metrics_text(port: int) -> str | None:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:  # not serving yet
        return None


def scrape(port: int, name: str) -> float | None:
    """The value of one sample, named with its labels as exposed (`name{label="value"}`); None when absent."""
    text = metrics_text(port) or ""
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name} ")]
    return values[0] if values else None


def total(port: int, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels` (0 when there is none)."""
    found = 0.0
    for line in (metrics_text(port) or "").splitlines():
        sample, _, value = line.rpartition(" ")
        metric, _, rest = sample.partition("{")
        if metric != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(have.get(k) == v for k, v in labels.items()):
            found += float(value)
    return found
