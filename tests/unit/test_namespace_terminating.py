"""controllers.common.unless_namespace_terminating: a 403 NamespaceTerminating ends a handler quietly (its staged
patch dropped, one log line per object); any other API error still reaches kopf for its retry."""

from __future__ import annotations

import json
import logging

import pytest
from kubernetes.client.exceptions import ApiException

from aiops.api import INCIDENT
from aiops.controllers.common import unless_namespace_terminating

BODY = {"metadata": {"namespace": "gone", "name": "oom", "uid": "u-1"}}


def refused(reason: str) -> ApiException:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps({"reason": "Forbidden", "details": {"causes": [{"reason": reason}]}})
    return exc


def test_a_terminating_namespace_ends_the_handler_quietly_and_once(caplog):
    patch = {"status": {"phase": "Triaging"}}
    caplog.set_level(logging.INFO, logger="aiops.controllers.common")
    for _ in range(3):  # a timer comes back every tick
        with unless_namespace_terminating(INCIDENT, BODY, patch):
            raise refused("NamespaceTerminating")
    assert patch == {}
    assert [r.getMessage() for r in caplog.records] == ["Incident gone/oom: its namespace is being deleted; left alone"]


def test_other_api_errors_still_reach_kopf():
    with pytest.raises(ApiException), unless_namespace_terminating(INCIDENT, BODY):
        raise refused("SomethingElse")
