"""The approvals admission webhook on Incidents: kopf serves it, sops/attestation.py decides.

Two handlers, for CREATE and UPDATE of the main resource (status writes never reach them):
- `approvals-seal` (mutating): reviews a write that adds approvals and seals the new entries;
- `approvals-check` (validating): reviews the final object again and refuses an added entry without its seal.
A write that leaves spec.approvals as it was passes at once: the operator's own writes, kopf's annotations.

Registered only when AIOPS_ADMISSION_ADDR is set: kopf refuses to start with admission handlers and no server.
The webhook configurations come from the Helm chart, or, with AIOPS_ADMISSION_MANAGED (a dev setup), kopf
creates them itself and points them at this process.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Collection
from typing import Any

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aiops import GROUP, VERSION
from aiops.api import INCIDENT
from aiops.clusters.reviews import Caller
from aiops.core import kube
from aiops.core.status import now_utc
from aiops.settings import AdmissionSettings, Settings
from aiops.sops import attestation

SEAL_ID = "approvals-seal"  # the URL paths of the two webhooks: https://HOST:PORT/<id>
CHECK_ID = "approvals-check"
FORBIDDEN = 403


def self_signed(hostnames: Collection[str], password: str | None = None) -> tuple[bytes, bytes]:
    """A serving certificate for `hostnames` (IP addresses as IP SANs) that is its own CA, and its key, as PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hostnames):
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            names.append(x509.DNSName(host))
        else:
            if not address.is_unspecified:
                names.append(x509.IPAddress(address))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, next(iter(hostnames)))])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


class _Server(kopf.WebhookServer):
    """kopf's HTTPS server, its self-signed certificate made with `cryptography` (kopf's own needs certbuilder)."""

    build_certificate = staticmethod(self_signed)


def server(conf: AdmissionSettings) -> kopf.WebhookServer:
    return _Server(addr=conf.host, port=conf.port, host=conf.url_host, certfile=conf.tls_cert, pkeyfile=conf.tls_key)


def _write(body: Any, old: Any, userinfo: dict[str, Any], operation: str) -> attestation.Write:
    meta = body.get("metadata") or {}
    stored = (old or {}).get("metadata") or {}
    return attestation.Write(
        operation=operation,
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        uid=stored.get("uid") or "",
        user=Caller(
            userinfo.get("username") or "",
            userinfo.get("uid") or "",
            tuple(userinfo.get("groups") or ()),
            dict(userinfo.get("extra") or {}),
        ),
        old=list(((old or {}).get("spec") or {}).get("approvals") or []),
        new=list((body.get("spec") or {}).get("approvals") or []),
    )


def register(conf: Settings) -> None:
    """Registers the two handlers and the startup step that gives kopf the server (and managed configurations)."""
    key = conf.approvals.key

    @kopf.on.startup()
    def admission_server(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.admission.server = server(conf.admission)
        settings.admission.managed = conf.admission.managed

    @kopf.on.mutate(GROUP, VERSION, INCIDENT.plural, id=SEAL_ID, operations=["CREATE", "UPDATE"])
    def seal(body: kopf.Body, old: Any, userinfo: dict, operation: str, patch: kopf.Patch, **_: Any) -> None:
        write = _write(body, old, userinfo, operation)
        try:
            added = attestation.review(kube.api_client(), write)
        except attestation.Refused as exc:
            raise kopf.AdmissionError(str(exc), code=FORBIDDEN) from None
        if added:
            patch.spec["approvals"] = attestation.seal(key, write, added, now_utc())

    @kopf.on.validate(GROUP, VERSION, INCIDENT.plural, id=CHECK_ID, operations=["CREATE", "UPDATE"])
    def check(body: kopf.Body, old: Any, userinfo: dict, operation: str, **_: Any) -> None:
        write = _write(body, old, userinfo, operation)
        try:
            attestation.check_sealed(key, write, attestation.review(kube.api_client(), write))
        except attestation.Refused as exc:
            raise kopf.AdmissionError(str(exc), code=FORBIDDEN) from None
