"""Collectors: gather evidence for an Incident's target. A source that fails is recorded in
`EvidenceBundle.missing`, never raised: the diagnosis goes on with what could be read."""

from aiops.diagnosis.evidence import EvidenceBundle


def pod_matcher(bundle: EvidenceBundle) -> str:
    """Label matchers for the target's pods, valid in PromQL and LogQL alike
    (namespace only when no pods are known)."""
    ns = bundle.target.namespace
    names = sorted(p["metadata"]["name"] for p in bundle.pods)
    if not names:
        return f'namespace="{ns}"'
    # Pod names are DNS names: only the dot is a regex metacharacter, escaped for the string literal too.
    alternatives = "|".join(n.replace(".", "\\\\.") for n in names)
    return f'namespace="{ns}",pod=~"{alternatives}"'
