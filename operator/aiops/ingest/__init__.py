"""Alert ingest: receivers that turn notifications from monitoring systems into Incidents.

Importing this package registers a kopf startup handler that starts the Alertmanager receiver when
AIOPS_WEBHOOK_ADDR is set (see aiops.settings); without it nothing listens.
"""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.startup(id="alertmanager-receiver")
def start_alertmanager_receiver(**_: Any) -> None:
    from aiops import settings
    from aiops.ingest.receiver import Receiver

    conf = settings.current().webhook
    if conf is None:
        return
    try:
        Receiver(conf).start()
    except OSError as exc:  # the port is taken, the certificate unreadable: stop rather than drop alerts
        raise kopf.PermanentError(f"Alertmanager receiver not started on {conf.host}:{conf.port}: {exc}") from exc
