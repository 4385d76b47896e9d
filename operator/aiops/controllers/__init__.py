"""kopf handlers, one module per kind. Importing this package registers them."""

from aiops.controllers import (  # noqa: F401
    analysisrun,
    anomalyscan,
    cache,
    capacityforecast,
    correlation,
    incident,
    knowledge,
    managedcluster,
    notifications,
    pools,
    postmortems,
    remediation,
    resync,
    sop,
)
