"""kopf handlers, one module per kind. Importing this package registers them."""

from . import analysisrun, incident, managedcluster, sop  # noqa: F401
