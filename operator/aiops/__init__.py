"""aiops-operator: turns alerts and symptoms into diagnoses an on-call engineer can trust."""

GROUP = "aiops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = f"{GROUP}/finalizer"  # kopf's, on the objects whose deletion the operator handles
__version__ = "0.1.0"
