"""A real PostgreSQL on loopback (Debian's packages): initdb into a temporary folder, pg_ctl start/stop on a free
port. The tests' history database (tests/support/servers.py) and `aiops-dev eval knowledge` both start it from here.

PostgreSQL refuses to run as root: when run as root, the data directory belongs to the `postgres` user (or
`nobody`) and initdb / pg_ctl run as that user through runuser.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from aiops_dev.controlplane import free_port, wait_port

PG_BIN = Path(os.environ.get("AIOPS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class PostgresServer:
    """initdb into a temporary folder, then pg_ctl start/stop on a free loopback port."""

    user = "aiops"

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="aiops-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "postgres.log"
        self.run_as: str | None = None
        if os.geteuid() == 0:
            self.run_as = "postgres" if _user_exists("postgres") else "nobody"
            self.root.chmod(0o755)
            shutil.chown(self.root, self.run_as)
        self._cmd("mkdir", "-p", str(self.sockets))
        self._cmd(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-sync"
        )  # fmt: skip

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.root)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def database(self) -> str:
        """The DSN of a new, empty database on this server: each test gets its own."""
        name = f"t_{uuid.uuid4().hex[:10]}"
        self._cmd(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return self.dsn.rpartition("/")[0] + f"/{name}"

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._cmd(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        wait_port(self.port, 30, "postgres")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._cmd(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return self._cmd(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
