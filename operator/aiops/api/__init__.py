"""The four custom resources of group aiops.dev/v1alpha1: the single source of truth for their shapes."""

from .analysisrun import ANALYSIS_RUN
from .common import Kind
from .incident import INCIDENT
from .managedcluster import MANAGED_CLUSTER
from .sop import SOP

KINDS: tuple[Kind, ...] = (MANAGED_CLUSTER, SOP, INCIDENT, ANALYSIS_RUN)

__all__ = ["ANALYSIS_RUN", "INCIDENT", "KINDS", "MANAGED_CLUSTER", "SOP", "Kind"]
