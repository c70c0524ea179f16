"""The Notifier protocol's two engine-side implementations: structured log lines and a recorder."""

from __future__ import annotations

import logging

import pytest

from remediation.incidents import approve, fail, open_incident, start_execution
from remediation.notifier import LoggingNotifier, Notification, Notifier, RecordingNotifier
from test_incidents import DIRECTORY, T0, make_plan, make_signal


def test_logging_notifier_writes_one_structured_line_per_call(caplog: pytest.LogCaptureFixture) -> None:
    incident = open_incident(plan=make_plan(), signal=make_signal(), now=T0)
    running = start_execution(approve(incident, user="U_ALICE", at=T0, directory=DIRECTORY), at=T0)
    failed = fail(running, at=T0, error="forbidden")
    notifier: Notifier = LoggingNotifier()
    with caplog.at_level(logging.INFO, logger="remediation.notifier"):
        notifier.incident_opened(incident)
        notifier.approval_needed(incident)
        notifier.incident_updated(incident)
        notifier.step_progress(incident, step=0, message="labelled the pod")
        notifier.incident_finished(failed)
    assert len(caplog.records) == 5
    assert [(r.incident_id, r.state) for r in caplog.records] == [(incident.id, "awaiting_approval")] * 4 + [
        (incident.id, "failed")
    ]
    assert caplog.records[4].levelno == logging.WARNING and caplog.records[4].error == "forbidden"
    assert caplog.records[1].getMessage() == f"approval needed: {incident.id} (0 of 1 approvals)"
    assert caplog.records[3].getMessage() == f"incident {incident.id} step 1: labelled the pod"


def test_recording_notifier_keeps_calls_in_order() -> None:
    incident = open_incident(plan=make_plan(), signal=make_signal(), now=T0)
    recorder = RecordingNotifier()
    notifier: Notifier = recorder
    notifier.incident_opened(incident)
    notifier.step_progress(incident, step=1, message="cordoned")
    assert recorder.methods() == ["incident_opened", "step_progress"]
    assert recorder.calls[1] == Notification("step_progress", incident, step=1, message="cordoned")
