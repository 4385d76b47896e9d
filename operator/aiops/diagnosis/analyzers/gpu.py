"""GPU failures in logs: NVIDIA Xid errors from the driver, and CUDA out-of-memory in applications.
A pod that cannot get a GPU at all is unschedulable.py's (Insufficient nvidia.com/gpu)."""

from __future__ import annotations

import re

from aiops.diagnosis.analyzers.common import finding, log_item, name, plural, scan_logs, workload_resource
from aiops.diagnosis.evidence import EvidenceBundle, Finding

FAILURE_MODES = ("GPUHardwareFault", "GPUXidError", "GPUOutOfMemory")
SCORE_HARDWARE = 0.9  # the driver reports a failing GPU: direct proof, and the node is the suspect
SCORE_OOM = 0.8
SCORE_XID = 0.6  # raised by the GPU for the application's doing, or informational

XID = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9a-fA-F:.]+)\): (\d+)")
CUDA_OOM = re.compile(
    r"CUDA error: out of memory|torch\.cuda\.OutOfMemoryError|CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY"
)
# NVIDIA's Xid catalogue, the codes seen in practice: code -> (meaning, hardware fault?)
XID_CODES: dict[int, tuple[str, bool]] = {
    13: ("graphics engine exception (often an illegal memory access by the application)", False),
    31: ("GPU memory page fault (an illegal address in the application, or the driver)", False),
    43: ("GPU stopped processing (the application's channel was reset)", False),
    45: ("preemptive cleanup after earlier errors (the application was stopped)", False),
    48: ("double-bit ECC error", True),
    63: ("ECC page retirement or row remapping recorded", False),
    64: ("ECC page retirement or row remapping failed", True),
    74: ("NVLink error", True),
    79: ("GPU has fallen off the bus", True),
    92: ("high single-bit ECC error rate", False),
    94: ("contained ECC error (the affected application must restart)", False),
    95: ("uncontained ECC error", True),
}


def classify(line: str) -> str | None:
    if m := XID.search(line):
        return f"xid-{m.group(2)}"
    return "cuda-oom" if CUDA_OOM.search(line) else None


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    nodes = {name(p): (p.get("spec") or {}).get("nodeName") for p in bundle.pods}
    findings = []
    for key, hits in scan_logs(bundle, classify).items():
        total = sum(h.count for h in hits)
        pods = [h.pod for h in hits]
        if key == "cuda-oom":
            findings.append(
                finding(
                    workload_resource(bundle, pods),
                    "GPUOutOfMemory",
                    SCORE_OOM,
                    f"{plural(total, 'log line')} report CUDA out of memory; first: {hits[0].first}",
                    "The model or batch does not fit the GPU's memory: lower the batch size or sequence length, use a"
                    " smaller or quantized model, or request a larger GPU; check no other process shares the GPU"
                    " (time-slicing, MPS); PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True helps fragmentation.",
                    [log_item("gpu-oom", h, "report CUDA out of memory") for h in hits],
                )
            )
            continue
        code = int(key.removeprefix("xid-"))
        meaning, hardware = XID_CODES.get(code, ("an Xid outside the common catalogue", False))
        hosts = sorted({nodes[p] for p in pods if nodes.get(p)})
        evidence = [log_item(f"gpu-{key}", h, f"report Xid {code}") for h in hits]
        if hardware:
            where = ", ".join(hosts) or "the node"
            findings.append(
                finding(
                    f"Node/{hosts[0]}" if len(hosts) == 1 else workload_resource(bundle, pods),
                    "GPUHardwareFault",
                    SCORE_HARDWARE,
                    f"Xid {code} ({meaning}) on {where}, {plural(total, 'line')}; first: {hits[0].first}",
                    f"Cordon and drain {where} (kubectl cordon / drain) so the workload moves to healthy GPUs; reset"
                    " the GPU (nvidia-smi -r) or reboot the node, and have the GPU replaced if the Xid comes back.",
                    evidence,
                )
            )
        else:
            findings.append(
                finding(
                    workload_resource(bundle, pods),
                    "GPUXidError",
                    SCORE_XID,
                    f"Xid {code} ({meaning}), {plural(total, 'line')}; first: {hits[0].first}",
                    "Usually the application's doing: read its log around the Xid, check the CUDA, driver and"
                    " framework versions match; if the same Xid hits different workloads on one node, drain it.",
                    evidence,
                )
            )
    return findings
