"""kopf handlers, one module per kind. Importing this package registers them."""

from aiops.controllers import analysisrun, incident, managedcluster, pools, remediation, sop  # noqa: F401
