"""Runbooks: the markdown format and its lint (sopfile), import into the cluster (importer), drafting an SOP
from free text with a model (analysis), and remediation/: matching, following steps, the safe actions."""
