"""registry.quarantine_tag and registry.release_tag: the real ACR and ARM SDK clients against tests/acr_server.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from acr_server import LOGIN_SERVER, REGISTRY_ID, AcrServer, registry_actions
from remediation.actions.container_registry import NotOurRegistry, QuarantineTagParams, ReleaseTagParams
from remediation.actions.dispatch import ActionSet
from remediation.actions.runtime import Outcome, PermanentFailure, StepContext, TargetChanged, TransientFailure
from remediation.store.snapshots import InMemorySnapshotStore

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
QUARANTINE = "registry.quarantine_tag"
RELEASE = "registry.release_tag"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AcrServer]:
    with AcrServer(tmp_path) as acr:
        acr.push("prod/api", "latest", OLD)
        acr.push("prod/api", "v1", OLD)
        yield acr


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def actions(server: AcrServer, sleeps: list[float]) -> ActionSet:
    return registry_actions(server, registries={LOGIN_SERVER: REGISTRY_ID}, sleep=sleeps.append)


def ctx(incident: str = "inc-1") -> StepContext:
    return StepContext(incident_id=incident, step=0, snapshots=InMemorySnapshotStore())


def params(mode: str = "lock", digest: str | None = OLD, registry: str = LOGIN_SERVER) -> QuarantineTagParams:
    return QuarantineTagParams(registry=registry, repository="prod/api", tag="latest", digest=digest, mode=mode)


class TestLock:
    def test_preview_shows_current_and_wanted_attributes_and_binds_the_digest(self, actions: ActionSet) -> None:
        preview = actions.preview(QUARANTINE, params(digest=None), ctx())
        assert preview.target is not None and preview.target.to_json() == {
            "kind": "tag", "name": "prod/api:latest", "namespace": None, "uid": None, "version": OLD,
        }  # fmt: skip
        assert preview.changes["tag"]["before"] == dict.fromkeys(
            ("can_read", "can_write", "can_delete", "can_list"), True
        )
        assert preview.changes["tag"]["after"] == {
            "can_read": False,
            "can_write": False,
            "can_delete": False,
            "can_list": True,
        }
        assert preview.changes["manifest"]["digest"] == OLD and not preview.noop

    def test_lock_sends_the_patches_and_release_restores_every_attribute(
        self, actions: ActionSet, server: AcrServer
    ) -> None:
        server.manifest("prod/api", OLD).attrs["list"] = False  # something not all-default, to be kept exactly
        before = server.snapshot()
        step = ctx()
        result = actions.apply(QUARANTINE, params(), step)

        assert result.outcome is Outcome.APPLIED and result.snapshot == "inc-1/step-0.json"
        patches = server.calls(method="PATCH")
        locked = {"deleteEnabled": False, "writeEnabled": False, "readEnabled": False}
        assert [(r.path, r.query["api-version"], r.body) for r in patches] == [
            ("/acr/v1/prod/api/_tags/latest", "2021-07-01", locked),
            (f"/acr/v1/prod/api/_manifests/{OLD}", "2021-07-01", locked),
        ]
        assert server.tag("prod/api", "latest").attrs == {"read": False, "write": False, "delete": False, "list": True}
        assert server.manifest("prod/api", OLD).attrs == {"read": False, "write": False, "delete": False, "list": False}
        assert step.snapshots.load(result.snapshot)["manifest_attributes"]["can_list"] is False

        undone = actions.undo(QUARANTINE, params(), result, step)
        assert undone.outcome is Outcome.UNDONE
        assert server.snapshot() == before

    def test_the_acr_token_dance_precedes_each_call(self, actions: ActionSet, server: AcrServer) -> None:
        actions.preview(QUARANTINE, params(), ctx())
        exchange = next(r for r in server.requests if r.path == "/oauth2/exchange")
        token = next(r for r in server.requests if r.path == "/oauth2/token")
        assert exchange.body["grant_type"] == "access_token" and exchange.body["access_token"] == "fake-aad-token"
        assert exchange.body["service"] == LOGIN_SERVER
        assert token.body["grant_type"] == "refresh_token" and token.body["scope"] == "repository:x:pull"

    def test_already_locked_is_a_noop_and_its_undo_changes_nothing(self, actions: ActionSet, server: AcrServer) -> None:
        actions.apply(QUARANTINE, params(), ctx("inc-a"))
        again = actions.apply(QUARANTINE, params(), ctx("inc-b"))
        assert again.outcome is Outcome.NOOP and again.snapshot is None
        assert actions.preview(QUARANTINE, params(), ctx("inc-c")).noop
        assert actions.undo(QUARANTINE, params(), again, ctx("inc-b")).outcome is Outcome.NOOP
        assert server.tag("prod/api", "latest").attrs["read"] is False

    def test_a_retry_after_a_crash_keeps_the_first_snapshot(self, actions: ActionSet, server: AcrServer) -> None:
        step = ctx()
        first = actions.apply(QUARANTINE, params(), step)
        retried = actions.apply(QUARANTINE, params(), step)  # the result was lost; the executor runs it again
        assert retried.outcome is Outcome.APPLIED and retried.undo == first.undo
        actions.undo(QUARANTINE, params(), retried, step)
        assert server.tag("prod/api", "latest").attrs["read"] is True

    def test_a_tag_moved_since_the_plan_is_refused(self, actions: ActionSet, server: AcrServer) -> None:
        server.push("prod/api", "latest", NEW)
        with pytest.raises(TargetChanged, match="approve again"):
            actions.apply(QUARANTINE, params(digest=OLD), ctx())
        assert server.calls(method="PATCH") == []

    def test_the_approved_version_in_the_context_binds_too(self, actions: ActionSet, server: AcrServer) -> None:
        preview = actions.preview(QUARANTINE, params(digest=None), ctx())
        server.push("prod/api", "latest", NEW)
        step = StepContext(incident_id="i", step=0, snapshots=InMemorySnapshotStore(), expected=preview.target)
        with pytest.raises(TargetChanged):
            actions.apply(QUARANTINE, params(digest=None), step)


class TestMove:
    def test_move_imports_then_deletes_and_release_reimports(self, actions: ActionSet, server: AcrServer) -> None:
        server.tag("prod/api", "latest").attrs["write"] = False
        before = server.snapshot()
        step = ctx()
        result = actions.apply(QUARANTINE, params(mode="move"), step)

        assert result.outcome is Outcome.APPLIED
        assert server.tag("prod/api", "latest") is None
        assert server.tag("quarantine/prod/api", "latest-aaaaaaaaaaaa").digest == OLD
        (start,) = server.calls(method="POST", prefix="/subscriptions/")
        assert start.path == f"{REGISTRY_ID}/importImage" and start.query == {"api-version": "2025-11-01"}
        assert start.body == {
            "source": {"resourceId": REGISTRY_ID, "sourceImage": f"prod/api@{OLD}"},
            "targetTags": ["quarantine/prod/api:latest-aaaaaaaaaaaa"],
            "mode": "Force",
        }
        polls = [r.path.rsplit("/", 2)[-2] for r in server.calls(method="GET", prefix="/subscriptions/")]
        assert polls == ["operationStatuses", "operationStatuses", "operationResults"]  # InProgress, Succeeded
        assert [r.path for r in server.calls(method="DELETE")] == ["/acr/v1/prod/api/_tags/latest"]

        actions.undo(QUARANTINE, params(mode="move"), result, step)
        after = server.snapshot()
        assert after["tags"] == before["tags"]  # the quarantine copy's tag is gone, the original is back as it was
        assert {k: v for k, v in after["manifests"].items() if k.startswith("prod/")} == before["manifests"]
        reimport = server.calls(method="POST", prefix="/subscriptions/")[-1].body
        assert reimport["source"]["sourceImage"] == f"quarantine/prod/api@{OLD}" and reimport["mode"] == "NoForce"

    def test_image_not_found_fails_at_once_with_the_service_message(
        self, actions: ActionSet, server: AcrServer
    ) -> None:
        server.unimportable.add(OLD)  # e.g. purged between the read and the import
        with pytest.raises(PermanentFailure, match="ImageNotFound") as failure:
            actions.apply(QUARANTINE, params(mode="move"), ctx())
        assert not isinstance(failure.value, TransientFailure)
        assert len(server.calls(method="POST", prefix="/subscriptions/")) == 1
        assert server.tag("prod/api", "latest") is not None  # nothing deleted

    def test_a_retry_after_the_tag_was_deleted_finishes_the_step(self, actions: ActionSet, server: AcrServer) -> None:
        step = ctx()
        first = actions.apply(QUARANTINE, params(mode="move"), step)
        again = actions.apply(QUARANTINE, params(mode="move"), step)
        assert again.outcome is Outcome.APPLIED and again.undo == first.undo
        assert len(server.calls(method="POST", prefix="/subscriptions/")) == 1  # the copy exists: not imported again

    def test_standalone_release_imports_the_quarantined_copy_back(self, actions: ActionSet, server: AcrServer) -> None:
        actions.apply(QUARANTINE, params(mode="move"), ctx())
        release = ReleaseTagParams(registry=LOGIN_SERVER, repository="prod/api", tag="latest")
        assert "import quarantine/prod/api:latest-aaaaaaaaaaaa back" in actions.preview(RELEASE, release, ctx()).summary
        assert actions.apply(RELEASE, release, ctx()).outcome is Outcome.APPLIED
        assert server.tag("prod/api", "latest").digest == OLD
        assert server.tag("quarantine/prod/api", "latest-aaaaaaaaaaaa") is None


class TestRetriesAndResolution:
    def test_429_with_retry_after_is_retried_after_the_given_delay(
        self, actions: ActionSet, server: AcrServer, sleeps: list[float]
    ) -> None:
        server.fault("POST", r"/importImage$", 429, headers={"Retry-After": "7"})
        actions.apply(QUARANTINE, params(mode="move"), ctx())
        assert sleeps == [7.0]
        assert len(server.calls(method="POST", prefix="/subscriptions/")) == 2

    def test_5xx_retries_are_bounded_and_end_transient(
        self, actions: ActionSet, server: AcrServer, sleeps: list[float]
    ) -> None:
        server.fault("GET", r"/_tags/latest$", 503, times=100)
        with pytest.raises(TransientFailure):
            actions.preview(QUARANTINE, params(), ctx())
        assert len(sleeps) == 3  # four attempts

    def test_a_registry_resource_id_is_resolved_with_registries_get(
        self, server: AcrServer, sleeps: list[float]
    ) -> None:
        unconfigured = registry_actions(server, registries={}, sleep=sleeps.append)
        resolver = unconfigured[QUARANTINE].runtime.resolver
        assert not resolver.is_ours(LOGIN_SERVER)
        unconfigured.preview(QUARANTINE, params(registry=REGISTRY_ID), ctx())
        unconfigured.preview(QUARANTINE, params(registry=REGISTRY_ID), ctx())
        gets = [r for r in server.calls(method="GET", prefix="/subscriptions/")]
        assert [(r.path, r.query["api-version"]) for r in gets] == [(REGISTRY_ID, "2025-11-01")]  # cached
        assert resolver.is_ours(LOGIN_SERVER)

    def test_an_image_in_someone_elses_registry_is_reported_not_touched(
        self, actions: ActionSet, server: AcrServer
    ) -> None:
        with pytest.raises(NotOurRegistry, match="not one of our registries"):
            actions.apply(QUARANTINE, params(registry="docker.io"), ctx())
        with pytest.raises(NotOurRegistry):
            actions.apply(QUARANTINE, params(registry=REGISTRY_ID.replace("myreg", "other")), ctx())
        assert server.calls(prefix="/acr/") == []
