"""kopf handlers, one module per kind. Importing this package registers them."""

from . import analysisrun, incident, managedcluster, pools, remediation, sop  # noqa: F401
