"""Node actions against kmock over HTTP: cordon, uncordon, drain; blast radius; binding; crash retries."""

from __future__ import annotations

import pytest

from kube_api import CLUSTER, NODES, PODS, Harness, node, pod
from remediation.actions.kubernetes import CordonNodeParams, DrainNodeParams, UncordonNodeParams
from remediation.actions.runtime import GuardRefused, Outcome, TargetChanged, TargetReplaced, TransientFailure

CORDON, UNCORDON, DRAIN = "kubernetes.cordon_node", "kubernetes.uncordon_node", "kubernetes.drain_node"

pytest_plugins = ["kube_api"]  # the `kube` and `k8s` fixtures


def nodes(h: Harness, count: int = 3, *, cordoned: tuple[str, ...] = ()) -> None:
    for i in range(1, count + 1):
        h.emu.put(NODES, node(f"n{i}", unschedulable=f"n{i}" in cordoned))


def unschedulable(h: Harness, name: str) -> bool:
    found = h.emu.get(NODES, None, name)
    assert found is not None
    return bool(found.get("spec", {}).get("unschedulable"))


def test_cordon_preview_is_a_dry_run_bound_to_the_node(k8s: Harness) -> None:
    nodes(k8s)
    preview = k8s.handler.preview(CORDON, CordonNodeParams(cluster=CLUSTER, node="n1"), k8s.ctx())
    assert not unschedulable(k8s, "n1")
    assert preview.changes == {"spec.unschedulable": {"from": False, "to": True}}
    assert preview.target is not None and preview.target.uid == k8s.emu.get(NODES, None, "n1")["metadata"]["uid"]
    assert any(r.params.get("dryRun") == "All" for r in k8s.emu if r.method == "PATCH")


def test_cordon_apply_and_undo(k8s: Harness) -> None:
    nodes(k8s)
    params = CordonNodeParams(cluster=CLUSTER, node="n1")
    result = k8s.handler.apply(CORDON, params, k8s.ctx())
    assert result.outcome is Outcome.APPLIED and result.undo == {"was_cordoned": False}
    assert unschedulable(k8s, "n1")
    assert k8s.snapshots.load(result.snapshot)["unschedulable"] is False
    again = k8s.handler.apply(CORDON, params, k8s.ctx(step=1))
    assert again.outcome is Outcome.NOOP and "already cordoned" in again.message
    assert k8s.handler.undo(CORDON, params, result, k8s.ctx()).outcome is Outcome.UNDONE
    assert not unschedulable(k8s, "n1")


def test_undo_never_uncordons_a_node_a_person_had_cordoned(k8s: Harness) -> None:
    nodes(k8s, cordoned=("n1",))
    params = CordonNodeParams(cluster=CLUSTER, node="n1")
    result = k8s.handler.apply(CORDON, params, k8s.ctx())
    assert result.outcome is Outcome.NOOP and result.undo == {"was_cordoned": True}
    undone = k8s.handler.undo(CORDON, params, result, k8s.ctx())
    assert undone.outcome is Outcome.NOOP and "left cordoned" in undone.message
    assert unschedulable(k8s, "n1")


def test_uncordon_and_its_undo_cordons_again(k8s: Harness) -> None:
    nodes(k8s, cordoned=("n1",))
    params = UncordonNodeParams(cluster=CLUSTER, node="n1")
    assert k8s.handler.preview(UNCORDON, params, k8s.ctx()).noop is False
    result = k8s.handler.apply(UNCORDON, params, k8s.ctx())
    assert result.outcome is Outcome.APPLIED and not unschedulable(k8s, "n1")
    assert k8s.handler.undo(UNCORDON, params, result, k8s.ctx()).outcome is Outcome.UNDONE
    assert unschedulable(k8s, "n1")


def test_a_retry_after_a_crash_keeps_the_first_snapshot(k8s: Harness) -> None:
    nodes(k8s)
    params = CordonNodeParams(cluster=CLUSTER, node="n1")
    approved = k8s.handler.preview(CORDON, params, k8s.ctx()).target
    k8s.handler.apply(CORDON, params, k8s.ctx(expected=approved))  # ... and the worker dies before recording
    retried = k8s.handler.apply(CORDON, params, k8s.ctx(expected=approved))
    assert retried.outcome is Outcome.APPLIED and retried.undo == {"was_cordoned": False}
    assert k8s.snapshots.load(retried.snapshot)["unschedulable"] is False
    assert k8s.handler.undo(CORDON, params, retried, k8s.ctx()).outcome is Outcome.UNDONE


@pytest.mark.parametrize(
    ("count", "cordoned", "rule"),
    [(3, ("n2",), "blast radius"), (2, (), "blast radius"), (1, (), "last schedulable node"),
     (3, ("n2", "n3"), "last schedulable node")],
)  # fmt: skip
def test_blast_radius_and_last_node_refused(k8s: Harness, count: int, cordoned: tuple[str, ...], rule: str) -> None:
    nodes(k8s, count, cordoned=cordoned)
    for action, params in ((CORDON, CordonNodeParams(cluster=CLUSTER, node="n1")),
                           (DRAIN, DrainNodeParams(cluster=CLUSTER, node="n1"))):  # fmt: skip
        with pytest.raises(GuardRefused, match=rule):
            k8s.handler.apply(action, params, k8s.ctx())
        with pytest.raises(GuardRefused, match=rule):
            k8s.handler.preview(action, params, k8s.ctx())
    assert not unschedulable(k8s, "n1")


def test_blast_radius_is_configurable(kube, tmp_path) -> None:
    from kube_api import make_harness

    h = make_harness(kube, tmp_path, max_unschedulable_fraction=0.5)
    nodes(h, 2)
    assert h.handler.apply(CORDON, CordonNodeParams(cluster=CLUSTER, node="n1"), h.ctx()).outcome is Outcome.APPLIED


def test_a_replaced_node_is_refused(k8s: Harness) -> None:
    nodes(k8s)
    params = CordonNodeParams(cluster=CLUSTER, node="n1")
    approved = k8s.handler.preview(CORDON, params, k8s.ctx()).target
    k8s.emu.put(NODES, node("n1"))  # deleted and re-created: a new uid
    with pytest.raises(TargetReplaced):
        k8s.handler.apply(CORDON, params, k8s.ctx(expected=approved))
    assert not unschedulable(k8s, "n1")


def test_a_modified_node_goes_back_for_approval_but_heartbeats_do_not(k8s: Harness) -> None:
    nodes(k8s)
    params = CordonNodeParams(cluster=CLUSTER, node="n1")
    approved = k8s.handler.preview(CORDON, params, k8s.ctx()).target
    live = k8s.emu.get(NODES, None, "n1")
    k8s.emu.put(NODES, {**live, "status": {"phase": "Running", "heartbeat": "later"}})  # new resourceVersion
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    k8s.emu.put(NODES, {**live, "spec": {"taints": [taint]}})
    with pytest.raises(TargetChanged, match="modified since approval: approve again"):
        k8s.handler.apply(CORDON, params, k8s.ctx(expected=approved))


def test_a_heartbeat_alone_does_not_invalidate_the_approval(k8s: Harness) -> None:
    nodes(k8s)
    params = CordonNodeParams(cluster=CLUSTER, node="n1")
    approved = k8s.handler.preview(CORDON, params, k8s.ctx()).target
    live = k8s.emu.get(NODES, None, "n1")
    k8s.emu.put(NODES, {**live, "status": {"phase": "Running", "heartbeat": "later"}})
    assert k8s.handler.apply(CORDON, params, k8s.ctx(expected=approved)).outcome is Outcome.APPLIED


def test_a_409_conflict_is_re_read_and_retried_once(k8s: Harness) -> None:
    nodes(k8s)
    k8s.emu.fail("PATCH", "/api/v1/nodes/n1", 409)
    result = k8s.handler.apply(CORDON, CordonNodeParams(cluster=CLUSTER, node="n1"), k8s.ctx())
    assert result.outcome is Outcome.APPLIED and unschedulable(k8s, "n1")


def test_two_409_conflicts_fail_clearly(k8s: Harness) -> None:
    from remediation.actions.kubernetes.errors import Conflict

    nodes(k8s)
    k8s.emu.fail("PATCH", "/api/v1/nodes/n1", 409, 409)
    with pytest.raises(Conflict, match="changed twice under us"):
        k8s.handler.apply(CORDON, CordonNodeParams(cluster=CLUSTER, node="n1"), k8s.ctx())


def test_a_stale_resource_version_is_a_real_409_on_the_emulator(k8s: Harness) -> None:
    from kubernetes.client import ApiException, CoreV1Api

    nodes(k8s)
    core = CoreV1Api(k8s.server.api_client())
    stale = core.read_node("n1").metadata.resource_version
    core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    with pytest.raises(ApiException) as caught:
        core.patch_node("n1", {"metadata": {"resourceVersion": stale}, "spec": {"unschedulable": True}})
    assert caught.value.status == 409


# --- drain ---


def seed_drain(h: Harness) -> None:
    nodes(h, 4)
    for name in ("web-1", "web-2", "api-1"):
        h.emu.put(PODS, pod(name))
    h.emu.put(PODS, pod("fluentbit", namespace="kube-system", owner="DaemonSet"))
    h.emu.put(PODS, pod("static", namespace="kube-system", owner=None,
                        annotations={"kubernetes.io/config.mirror": "abc"}))  # fmt: skip
    h.emu.put(PODS, pod("elsewhere", node_name="n2"))


def test_drain_preview_lists_what_it_would_evict(k8s: Harness) -> None:
    seed_drain(k8s)
    preview = k8s.handler.preview(DRAIN, DrainNodeParams(cluster=CLUSTER, node="n1"), k8s.ctx())
    assert sorted(preview.changes["evict"]) == ["payments/api-1", "payments/web-1", "payments/web-2"]
    assert sorted(preview.changes["skip"]) == ["kube-system/fluentbit", "kube-system/static"]
    assert preview.changes["cordon"] is True and not unschedulable(k8s, "n1")


def test_drain_cordons_evicts_and_reports_progress(k8s: Harness) -> None:
    seed_drain(k8s)
    params = DrainNodeParams(cluster=CLUSTER, node="n1", max_concurrency=1)
    result = k8s.handler.apply(DRAIN, params, k8s.ctx())
    assert result.outcome is Outcome.APPLIED and "3 of 3" in result.message
    assert unschedulable(k8s, "n1")
    assert k8s.progress == ["1 of 3 evicted", "2 of 3 evicted", "3 of 3 evicted"]
    assert [k8s.emu.get(PODS, "payments", n) for n in ("web-1", "web-2", "api-1")] == [None, None, None]
    assert k8s.emu.get(PODS, "kube-system", "fluentbit") is not None
    assert k8s.emu.get(PODS, "kube-system", "static") is not None
    assert k8s.emu.get(PODS, "payments", "elsewhere") is not None
    undone = k8s.handler.undo(DRAIN, params, result, k8s.ctx())
    assert undone.outcome is Outcome.UNDONE and not unschedulable(k8s, "n1")


def test_a_pdb_blocked_eviction_is_retried_until_it_passes(k8s: Harness) -> None:
    seed_drain(k8s)
    k8s.emu.pdb_blocks[("payments", "web-1")] = 3
    result = k8s.handler.apply(DRAIN, DrainNodeParams(cluster=CLUSTER, node="n1", timeout_seconds=60), k8s.ctx())
    assert result.outcome is Outcome.APPLIED and k8s.emu.get(PODS, "payments", "web-1") is None
    assert k8s.clock.sleeps == [5.0, 5.0, 5.0]


def test_a_pdb_that_never_yields_fails_after_the_timeout(k8s: Harness) -> None:
    seed_drain(k8s)
    k8s.emu.pdb_blocks[("payments", "web-1")] = 1000
    with pytest.raises(TransientFailure, match="PodDisruptionBudget still blocks eviction of payments/web-1"):
        k8s.handler.apply(DRAIN, DrainNodeParams(cluster=CLUSTER, node="n1", timeout_seconds=20), k8s.ctx())
    assert sum(k8s.clock.sleeps) <= 20
    assert k8s.emu.get(PODS, "payments", "web-2") is None  # the others were evicted


def test_drain_concurrency_is_bounded(k8s: Harness) -> None:
    nodes(k8s, 4)
    for i in range(12):
        k8s.emu.put(PODS, pod(f"p{i}"))
    k8s.emu.eviction_delay = 0.02
    k8s.handler.apply(DRAIN, DrainNodeParams(cluster=CLUSTER, node="n1", max_concurrency=3), k8s.ctx())
    assert k8s.emu.max_in_flight == 3
    assert len(k8s.progress) == 12 and k8s.progress[-1] == "12 of 12 evicted"
