"""A real local control plane: etcd + kube-apiserver on 127.0.0.1 (no kubelet, no controllers).

Used by the test suite's session fixture and by `aiops-dev cluster up|down`. Binaries come from
$KUBEBUILDER_ASSETS, then PATH, then the version-keyed cache that hack/install-control-plane.sh
fills (and runs when the cache is cold).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from aiops.settings import cache_dir as cache_root  # the dev tools keep their files where the CLI does

K8S_VERSION = "1.20.2"
BINARIES = ("etcd", "kube-apiserver")
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "install-control-plane.sh"
READY_TIMEOUT_S = 90
ADMIN = "aiops-admin"  # the kubeconfig's user, in group system:masters


class ControlPlaneError(RuntimeError):
    pass


def _dir_with_binaries(directory: str | Path | None) -> Path | None:
    if directory and all(os.access(Path(directory, b), os.X_OK) for b in BINARIES):
        return Path(directory)
    return None


def find_binaries(install: bool = True) -> Path:
    """The directory holding etcd and kube-apiserver, installing them when allowed."""
    for candidate in (os.environ.get("KUBEBUILDER_ASSETS"), cache_root() / "control-plane" / f"v{K8S_VERSION}"):
        if found := _dir_with_binaries(candidate):
            return found
    on_path = [shutil.which(b) for b in BINARIES]
    if all(on_path) and Path(on_path[0]).parent == Path(on_path[1]).parent:
        return Path(on_path[0]).parent
    if not install:
        raise ControlPlaneError("etcd and kube-apiserver not found; run hack/install-control-plane.sh")
    if not INSTALL_SCRIPT.exists():
        raise ControlPlaneError(
            f"etcd/kube-apiserver not found and {INSTALL_SCRIPT} is missing; "
            "set KUBEBUILDER_ASSETS to a directory holding both"
        )
    print(
        f"control-plane binaries not cached; running {INSTALL_SCRIPT} (a cold build takes ~10 minutes)",
        file=sys.stderr,
        flush=True,
    )
    out = subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    found = _dir_with_binaries(out.stdout.strip().splitlines()[-1])
    if not found:
        raise ControlPlaneError(f"{INSTALL_SCRIPT} finished but left no binaries in {out.stdout.strip()}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, what: str, alive=lambda: True) -> None:
    """Returns once something listens on 127.0.0.1:`port`; raises when `alive()` turns false or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def write_certificates(directory: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost, and the service-account key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiops-dev-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sans = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "apiserver.crt": cert.public_bytes(serialization.Encoding.PEM),
        "apiserver.key": _pem_key(key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o600)


@dataclass
class ControlPlane:
    """etcd + kube-apiserver under `workdir`; `name` is the kubeconfig context."""

    workdir: Path
    name: str = "aiops-dev"
    bin_dir: Path | None = None
    pids: dict[str, int] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    _argv: dict[str, tuple[list[str], bool]] = field(default_factory=dict, repr=False)  # to start one again

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    def _spawn(self, name: str, argv: list[str], detach: bool) -> int:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach
        )
        log.close()
        self._procs[name] = proc
        self.pids[name] = proc.pid
        self._argv[name] = (argv, detach)
        return proc.pid

    def start(self, detach: bool = False) -> Path:
        """Starts both processes and waits until /readyz answers; returns the kubeconfig path."""
        bin_dir = self.bin_dir or find_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        certs = self.workdir / "certs"
        write_certificates(certs)
        token = secrets.token_hex(16)
        (self.workdir / "tokens.csv").write_text(f'{token},{ADMIN},{ADMIN},"system:masters"\n')
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name",
                self.name,
                "--data-dir",
                str(self.workdir / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"{self.name}=http://127.0.0.1:{peer_port}",
                "--listen-metrics-urls",
                f"http://127.0.0.1:{free_port()}",
            ],
            detach,
        )
        self._spawn(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--insecure-port=0",
                f"--cert-dir={certs}",
                f"--tls-cert-file={certs / 'apiserver.crt'}",
                f"--tls-private-key-file={certs / 'apiserver.key'}",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certs / 'sa.pub'}",
                f"--service-account-signing-key-file={certs / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--authorization-mode=RBAC",
                # No controller-manager creates the default ServiceAccount, so pods would be refused.
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
            ],
            detach,
        )
        server = f"https://127.0.0.1:{api_port}"
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": self.name,
                            "cluster": {"server": server, "certificate-authority": str(certs / "ca.crt")},
                        }
                    ],
                    "users": [{"name": ADMIN, "user": {"token": token}}],
                    "contexts": [
                        {
                            "name": self.name,
                            "context": {"cluster": self.name, "user": ADMIN, "namespace": "default"},
                        }
                    ],
                    "current-context": self.name,
                },
                sort_keys=False,
            )
        )
        self.kubeconfig.chmod(0o600)
        self.state_file.write_text(json.dumps({"pids": self.pids, "server": server}))
        try:
            self.wait_ready(server, token, certs / "ca.crt")
        except ControlPlaneError:
            self.stop(remove=False)
            raise
        return self.kubeconfig

    def wait_ready(self, server: str, token: str, ca: Path) -> None:
        ctx = ssl.create_default_context(cafile=str(ca))
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            for name, pid in self.pids.items():
                if not _alive(pid):
                    tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise ControlPlaneError(f"{name} exited during start-up; last log lines:\n{tail}")
            req = urllib.request.Request(f"{server}/readyz", headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.25)
        raise ControlPlaneError(
            f"kube-apiserver at {server} not ready after {READY_TIMEOUT_S}s: {last}; "
            f"see {self.workdir}/kube-apiserver.log"
        )

    def restart(self, name: str, down_s: float = 0.0) -> None:
        """Stops one of the two processes (kube-apiserver or etcd) and starts it again after `down_s`, on the
        same ports and data, as an upgrade or a crash would (tests of watches, clients and writes that must
        come through the outage); returns once the API server is ready again (its /readyz checks etcd)."""
        pid = self.pids[name]
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid, 15)
        self._procs.pop(name).wait()
        time.sleep(down_s)
        argv, detach = self._argv[name]
        self._spawn(name, argv, detach)
        state = json.loads(self.state_file.read_text())
        self.state_file.write_text(json.dumps({**state, "pids": self.pids}))
        token = (self.workdir / "tokens.csv").read_text().split(",", 1)[0]
        self.wait_ready(state["server"], token, self.workdir / "certs" / "ca.crt")

    def running(self) -> bool:
        if not self.state_file.exists():
            return False
        self.pids = json.loads(self.state_file.read_text())["pids"]
        return all(_alive(pid) for pid in self.pids.values())

    def stop(self, remove: bool = True) -> None:
        if not self.pids and self.state_file.exists():
            self.pids = json.loads(self.state_file.read_text())["pids"]
        for name in ("kube-apiserver", "etcd"):
            pid = self.pids.get(name)
            if pid and _alive(pid):
                os.kill(pid, signal.SIGTERM)
                _wait_gone(pid, 15)
            if name in self._procs:
                self._procs.pop(name).wait()
        self.pids = {}
        if remove:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return False
    except ChildProcessError:
        pass  # not our child (started by an earlier `aiops-dev cluster up`)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
