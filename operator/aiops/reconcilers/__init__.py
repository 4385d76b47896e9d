"""kopf handlers, one module per kind. Importing this package registers them."""

from . import analysisrun, incident, managedcluster, remediation, sop  # noqa: F401
