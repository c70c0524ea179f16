"""Quarantine by lock disables the manifest, so every tag on the same digest stops being pullable.

The attack on a responder's judgement: approving "lock prod/api:latest" while v1, on the same image,
silently goes dark. The preview lists those tags and the Slack message says so.
"""

from __future__ import annotations

from pathlib import Path

from acr_server import LOGIN_SERVER, REGISTRY_ID, AcrServer, registry_actions
from bot.blocks import incident_blocks
from remediation.actions.container_registry import QuarantineTagParams
from remediation.actions.runtime import StepContext
from remediation.store.snapshots import InMemorySnapshotStore
from test_incidents import make_plan, make_signal

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64


def test_locking_a_tag_names_the_other_tags_on_its_image(tmp_path: Path) -> None:
    with AcrServer(tmp_path) as server:
        server.push("prod/api", "latest", OLD)
        server.push("prod/api", "v1", OLD)
        server.push("prod/api", "v2", NEW)
        actions = registry_actions(server, registries={LOGIN_SERVER: REGISTRY_ID})
        params = QuarantineTagParams(registry=LOGIN_SERVER, repository="prod/api", tag="latest", digest=OLD)
        preview = actions.preview("registry.quarantine_tag", params, StepContext("inc-1", 0, InMemorySnapshotStore()))
    assert preview.changes["other_tags"] == ["v1"]  # v2 is another image: untouched
    assert "also stops being pullable: v1" in preview.summary

    import dataclasses
    from datetime import UTC, datetime

    from remediation.incidents import open_incident

    incident = open_incident(plan=make_plan(), signal=make_signal(), now=datetime.now(UTC))
    shown = {"step": 0, "summary": preview.summary, "target": None, "noop": False, "changes": preview.changes}
    blocks = incident_blocks(dataclasses.replace(incident, previews=(shown,)))
    assert "also stops being pullable: v1" in str(blocks)
