"""A real Prometheus (Debian's package, `hack/install-test-deps.sh`) on 127.0.0.1, loaded with series
through promtool's OpenMetrics backfill: metric evidence for tests and for `aiops-dev eval nezha`."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from aiops_dev.controlplane import free_port


class PrometheusServer:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def backfill(self, openmetrics: str) -> None:
        """Writes TSDB blocks from OpenMetrics text (must end with '# EOF'); call before start()."""
        source = self.workdir / "backfill.om"
        source.write_text(openmetrics)
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.workdir / "data")],
            check=True,
            capture_output=True,
            text=True,
        )

    def start(self, rules: str | None = None, alertmanager: str | None = None) -> None:
        """Starts Prometheus; `rules` (a rule file's YAML) are evaluated every second and their alerts go
        to `alertmanager` (host:port) when given."""
        config = self.workdir / "prometheus.yml"
        text = "global:\n  scrape_interval: 1m\n"
        if rules is not None:
            (self.workdir / "rules.yml").write_text(rules)
            text += f"  evaluation_interval: 1s\nrule_files:\n  - {self.workdir / 'rules.yml'}\n"
        if alertmanager:
            text += f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
        config.write_text(text)
        log = open(self.workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                # Backfilled samples may be older than the default 15 days; keep them all.
                "--storage.tsdb.retention.time=100y",
                # The first evaluation may come before the Alertmanager is discovered: resend soon.
                *(["--rules.alert.resend-delay=1s"] if rules is not None else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(
            f"Prometheus not ready on {self.url}: {(self.workdir / 'prometheus.log').read_text()[-2000:]}"
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
