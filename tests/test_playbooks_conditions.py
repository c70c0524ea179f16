"""Conditions and triggers: each op, `not`, absent fields, severities, field paths, ACR short types.

Each test writes a one-step notify playbook whose `on`/`when` it varies, and asks whether it fires.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from remediation.playbooks import load_playbooks
from remediation.signals.model import Severity, Signal
from test_playbooks import CLUSTER, defender_signal, registry_signal


def _fires(tmp_path: Path, signal: Signal, when: str = "", *, on: str = "") -> bool:
    """`on` is a flow mapping; `when` the YAML list of conditions."""
    lines = [
        "name: probe",
        "description: Fires or not.",
        f"on: {on or '{source: defender, types: [K8S_PrivilegedContainer]}'}",
        "steps: [{action: notify, params: {message: probe}}]",
        "approval: {mode: auto}",
    ]
    if when:
        lines += ["when:", textwrap.indent(textwrap.dedent(when), "  ")]
    (tmp_path / "probe.yaml").write_text("\n".join(lines) + "\n")
    return bool(load_playbooks(tmp_path).match(signal))


def _pod(**values: Any) -> Signal:
    return defender_signal("K8S_PrivilegedContainer", cluster_resource_id=CLUSTER, **values)


def test_equals(tmp_path: Path) -> None:
    assert _fires(tmp_path, _pod(namespace="ops"), "- {field: targets.namespace, equals: ops}")
    assert not _fires(tmp_path, _pod(namespace="ops-2"), "- {field: targets.namespace, equals: ops}")


def test_in(tmp_path: Path) -> None:
    when = "- {field: targets.namespace, in: [ops, payments]}"
    assert _fires(tmp_path, _pod(namespace="payments"), when)
    assert not _fires(tmp_path, _pod(namespace="pay"), when)


def test_glob_matches_the_whole_value_case_sensitively(tmp_path: Path) -> None:
    when = "- {field: targets.image, glob: '*.azurecr.io/*'}"
    assert _fires(tmp_path, _pod(image="myregistry.azurecr.io/tools/netshoot:v1"), when)
    assert not _fires(tmp_path, _pod(image="MyRegistry.AZURECR.IO/tools/netshoot:v1"), when)
    assert _fires(tmp_path, _pod(pod="web-1"), "- {field: targets.pod, glob: 'web-[0-9]'}")
    assert not _fires(tmp_path, _pod(pod="web-10"), "- {field: targets.pod, glob: 'web-[0-9]'}")


def test_glob_stars_cross_slashes_as_fnmatch_does(tmp_path: Path) -> None:
    # Why the shipped playbooks test `targets.registry_login_server`, which holds no '/', and not the image.
    when = "- {field: targets.image, glob: '*.azurecr.io/*'}"
    assert _fires(tmp_path, _pod(image="docker.io/evil/x.azurecr.io/miner:1"), when)
    login_server = "- {field: targets.registry_login_server, glob: '*.azurecr.io'}"
    assert not _fires(
        tmp_path, _pod(registry_login_server="docker.io", image="docker.io/evil/x.azurecr.io/m:1"), login_server
    )


def test_regex_searches_anywhere_unless_anchored(tmp_path: Path) -> None:
    assert _fires(tmp_path, _pod(pod="xmrig-miner-7"), "- {field: targets.pod, regex: 'miner'}")
    assert not _fires(tmp_path, _pod(pod="xmrig-miner-7"), "- {field: targets.pod, regex: '^miner'}")


def test_not_inverts(tmp_path: Path) -> None:
    when = "- not: {field: targets.namespace, equals: kube-system}"
    assert _fires(tmp_path, _pod(namespace="ops"), when)
    assert not _fires(tmp_path, _pod(namespace="kube-system"), when)
    assert not _fires(tmp_path, _pod(namespace="ops"), "- not: {not: {field: targets.namespace, equals: kube-system}}")


@pytest.mark.parametrize(
    "condition",
    [
        "{field: targets.namespace, equals: ops}",
        "{field: targets.namespace, in: [ops]}",
        "{field: targets.namespace, glob: '*'}",
        "{field: targets.namespace, regex: '.*'}",
        "{field: extended_properties.subjectName, regex: '.*'}",
    ],
)
def test_a_condition_on_an_absent_field_is_false_and_its_not_true(tmp_path: Path, condition: str) -> None:
    assert not _fires(tmp_path, _pod(), f"- {condition}")
    assert _fires(tmp_path, _pod(), f"- not: {condition}")


def test_all_conditions_must_hold(tmp_path: Path) -> None:
    when = """\
        - {field: targets.namespace, equals: ops}
        - {field: targets.pod, glob: 'debug-*'}
        """
    assert _fires(tmp_path, _pod(namespace="ops", pod="debug-1"), when)
    assert not _fires(tmp_path, _pod(namespace="ops", pod="web-1"), when)


def test_extended_properties_keys_may_hold_spaces(tmp_path: Path) -> None:
    signal = _pod(extended={"Resource name": "dev-admin", "subjectName": "system:anonymous"})
    assert _fires(tmp_path, signal, "- {field: extended_properties.Resource name, equals: dev-admin}")
    assert _fires(tmp_path, signal, "- {field: extended_properties.subjectName, regex: '^system:'}")


def test_top_level_fields(tmp_path: Path) -> None:
    signal = defender_signal("K8S_PrivilegedContainer", title="Privileged container detected")
    assert _fires(tmp_path, signal, "- {field: source, equals: defender}")
    assert _fires(tmp_path, signal, "- {field: type, glob: 'K8S_*'}")
    assert _fires(tmp_path, signal, "- {field: title, regex: '(?i)privileged'}")
    assert not _fires(tmp_path, signal, "- {field: actor, regex: '.*'}")  # no actor: absent


def test_severity_conditions_compare_by_name(tmp_path: Path) -> None:
    signal = _pod(severity=Severity.HIGH)
    assert _fires(tmp_path, signal, "- {field: severity, equals: high}")
    assert _fires(tmp_path, signal, "- {field: severity, in: [High, critical]}")  # names are read case-blind
    assert not _fires(tmp_path, signal, "- {field: severity, equals: medium}")


@pytest.mark.parametrize(
    ("severity", "fires"),
    [(Severity.INFORMATIONAL, False), (Severity.LOW, False), (Severity.MEDIUM, True), (Severity.CRITICAL, True)],
)
def test_min_severity_is_a_threshold(tmp_path: Path, severity: Severity, fires: bool) -> None:
    on = "{source: defender, types: [K8S_PrivilegedContainer], min_severity: medium}"
    assert _fires(tmp_path, _pod(severity=severity), on=on) is fires


def test_short_acr_types_are_normalised(tmp_path: Path) -> None:
    on = "{source: registry, types: [ImagePushed]}"
    assert _fires(tmp_path, registry_signal("ImagePushed", repository="prod/api", tag="v1"), on=on)
    assert not _fires(tmp_path, registry_signal("ImageDeleted", repository="prod/api", tag="v1"), on=on)


def test_a_playbook_only_answers_its_own_source_and_types(tmp_path: Path) -> None:
    assert not _fires(tmp_path, defender_signal("K8S_SensitiveMount"))
    on = "{source: registry, types: [ImageDeleted]}"
    assert not _fires(tmp_path, _pod(), on=on)


def test_a_step_whose_conditions_fail_is_left_out_and_an_empty_plan_is_not_made(tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text(
        textwrap.dedent("""\
            name: two-steps
            description: The second step only for ops.
            on: {source: defender, types: [K8S_PrivilegedContainer]}
            steps:
              - action: notify
                when: [{field: targets.namespace, equals: ops}]
                params: {message: "ops pod ${targets.pod}"}
              - action: notify
                when: [{field: targets.namespace, equals: payments}]
                params: {message: "payments pod ${targets.pod}"}
            approval: {mode: auto}
            """)
    )
    playbooks = load_playbooks(tmp_path)
    [plan] = playbooks.match(_pod(namespace="payments", pod="p1"))
    assert [dict(step.params) for step in plan.steps] == [{"message": "payments pod p1"}]
    assert playbooks.match(_pod(namespace="default", pod="p1")) == []
