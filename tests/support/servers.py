"""PostgreSQL, Redis and Alertmanager as real servers on loopback (Debian's packages), and an S3-compatible object
store (moto's standalone server, from its own virtualenv .venv-s3: `make setup`), started and stopped by tests.

PostgresServer lives in aiops_dev.postgres (the dev evaluations start it too) and is re-exported here.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import asyncpg
import yaml

from aiops_dev.controlplane import free_port, wait_port
from aiops_dev.postgres import PostgresServer  # noqa: F401  (one implementation, shared with aiops-dev eval)

REDIS_SERVER = os.environ.get("AIOPS_TEST_REDIS_SERVER", "/usr/bin/redis-server")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
# moto cannot share .venv: its botocore wants python-dateutil<3, kubernetes 37 wants >=3.
MOTO_SERVER = Path(os.environ.get("AIOPS_TEST_MOTO_SERVER", Path(__file__).parents[2] / ".venv-s3/bin/moto_server"))


def query(dsn: str, sql: str, *args) -> list:
    """The rows of one query, on a connection of its own."""

    async def run():
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


class RedisServer:
    """redis-server on a free loopback port; nothing persisted, or with `persist` an append-only file synced on
    every write, as a Redis that keeps the event stream through its restarts is run."""

    def __init__(self, port: int | None = None, persist: bool = False):
        self.port = port or free_port()
        self.persist = persist
        self.root = Path(tempfile.mkdtemp(prefix="aiops-redis-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = open(self.root / "redis.log", "ab")
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof,
             "--dir", str(self.root)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        wait_port(self.port, 15, "redis-server", alive=lambda: self.proc.poll() is None)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class AlertmanagerServer:
    """Debian's prometheus-alertmanager on loopback, clustering off."""

    def __init__(self, workdir: Path, config: dict):
        self.workdir, self.port = workdir, free_port()
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.proc = None

    def start(self) -> None:
        log = open(self.workdir / "alertmanager.log", "wb")
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={self.workdir / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        deadline = time.monotonic() + 30
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Alertmanager did not become ready:\n{self.log()[-2000:]}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def fire(self, *alerts: dict[str, str]) -> None:
        """Posts firing alerts, each given by its labels, to the v2 API in one request (as Prometheus would)."""
        body = json.dumps([{"labels": labels, "annotations": {"summary": "test alert"}} for labels in alerts]).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200, resp.status

    def log(self) -> str:
        return (self.workdir / "alertmanager.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class MotoServer:
    """moto's S3 on a loopback port: buckets and objects in memory, any credentials accepted, no signature checks
    (MinIO checks both); it answers NoSuchBucket and checks bucket names as S3 does."""

    def __init__(self, port: int | None = None):
        if not MOTO_SERVER.exists():
            raise RuntimeError(f"{MOTO_SERVER} is missing: `make setup` installs moto into .venv-s3")
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="aiops-s3-"))
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        log = open(self.root / "moto.log", "ab")
        self.proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        wait_port(self.port, 30, "moto_server", alive=lambda: self.proc.poll() is None)
        return self

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
