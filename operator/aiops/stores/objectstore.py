"""S3-compatible object storage (MinIO in production), through MinIO's own SDK: put an object once per content.

`put` is check-then-put: it reads the object's metadata first and writes only when the stored copy's sha256
(kept as user metadata) differs, so a writer that crashed after the put and runs again writes nothing.
The SDK cannot send If-None-Match, hence the read first; one writer per key (the Incident's UID in it)
makes that race-free.

Every failure is an ObjectStoreError whose `reason` says which kind (the store cannot be reached, the
bucket does not exist, the store refused) and whose message names the endpoint and bucket.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from enum import StrEnum

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.helpers import check_bucket_name

from aiops.settings import PostmortemSettings

TIMEOUT = urllib3.Timeout(connect=5, read=30)
SHA_META = "sha256"


class Failure(StrEnum):
    UNREACHABLE = "unreachable"
    BUCKET_MISSING = "bucket-missing"
    REJECTED = "rejected"  # credentials, permissions, or anything else the store answered with an error


class ObjectStoreError(Exception):
    def __init__(self, failure: Failure, message: str):
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True)
class Stored:
    bucket: str
    key: str
    url: str
    sha256: str
    written: bool  # False: the store already held this content


class ObjectStore:
    def __init__(self, config: PostmortemSettings):
        try:
            check_bucket_name(config.bucket, strict=True)
        except ValueError as exc:
            raise ValueError(f"AIOPS_POSTMORTEM_BUCKET={config.bucket!r}: {exc}") from None
        scheme, _, host = config.endpoint.partition("://")
        self.endpoint, self.bucket = config.endpoint, config.bucket
        # One quick retry at most: the caller retries with backoff, and must not hold its thread for minutes.
        http = urllib3.PoolManager(timeout=TIMEOUT, retries=urllib3.Retry(total=1, backoff_factor=0.5))
        self._client = Minio(
            host,
            access_key=config.access_key or None,
            secret_key=config.secret_key or None,
            secure=scheme == "https",
            region=config.region,
            http_client=http,
        )

    def url(self, key: str) -> str:
        return f"{self.endpoint}/{self.bucket}/{key}"

    def put(self, key: str, data: bytes, content_type: str) -> Stored:
        """Stores `data` at `key` unless the bucket holds it already; raises ObjectStoreError."""
        sha = hashlib.sha256(data).hexdigest()
        stored = Stored(self.bucket, key, self.url(key), sha, written=True)
        where = f"object store {self.endpoint}, bucket {self.bucket!r}"
        try:
            if self._stored_sha(key) == sha:
                return Stored(self.bucket, key, stored.url, sha, written=False)
            self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata={SHA_META: sha}
            )
            return stored
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                raise ObjectStoreError(
                    Failure.BUCKET_MISSING, f"{where}: the bucket does not exist; create it (mc mb) or fix the bucket"
                ) from None
            raise ObjectStoreError(
                Failure.REJECTED, f"{where}: {exc.code}: {exc.message}; check the credentials and the bucket policy"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ObjectStoreError(Failure.UNREACHABLE, f"{where}: cannot reach it: {_cause(exc)}") from None

    def _stored_sha(self, key: str) -> str | None:
        try:
            stat = self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            # A HEAD answer has no body: a missing bucket reads as a missing key too, and the put names it.
            if exc.code in ("NoSuchKey", "NoSuchBucket", "ResourceNotFound"):
                return None
            raise
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        return meta.get(f"x-amz-meta-{SHA_META}")


def _cause(exc: BaseException) -> str:
    """The innermost reason of a urllib3 error (MaxRetryError wraps the connection's own)."""
    reason = getattr(exc, "reason", None)
    return str(reason) if reason is not None else str(exc)
