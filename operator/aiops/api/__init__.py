"""The four custom resources of group aiops.dev/v1alpha1: the single source of truth for their shapes."""

from aiops.api.analysisrun import ANALYSIS_RUN
from aiops.api.common import Kind
from aiops.api.incident import INCIDENT
from aiops.api.managedcluster import MANAGED_CLUSTER
from aiops.api.sop import SOP

KINDS: tuple[Kind, ...] = (MANAGED_CLUSTER, SOP, INCIDENT, ANALYSIS_RUN)

__all__ = ["ANALYSIS_RUN", "INCIDENT", "KINDS", "MANAGED_CLUSTER", "SOP", "Kind"]
