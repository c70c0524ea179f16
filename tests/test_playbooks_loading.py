"""Loading playbook folders: every problem reported at once, each naming file, playbook and field.

`tests/fixtures/playbooks/broken/` holds one problem per file (the duplicate name takes two files);
the expected message of each is spelt out in full below. Smaller cases are written to `tmp_path`.
"""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from remediation.actions import ACTIONS
from remediation.plans import ApprovalMode, OnTimeout
from remediation.playbooks import PlaybookErrors, check_playbooks, load_playbooks

BROKEN = Path(__file__).resolve().parent / "fixtures" / "playbooks" / "broken"
KNOWN_ACTIONS = ", ".join(sorted(ACTIONS))
TARGET_FIELDS = (
    "registry_login_server, registry_resource_id, repository, tag, digest, cluster_resource_id, namespace, pod, "
    "container, image, node, rbac_kind, rbac_name"
)
RBAC = "kubernetes.delete_rbac_object"

EXPECTED = {
    "bad-duration.yaml": [
        "playbook 'bad-duration': approval.timeout: expected a duration such as 30s, 15m, 2h, 1d or 1h30m, "
        "got '30 minutes' (a string)"
    ],
    "bad-literal.yaml": [
        f"playbook 'bad-literal': steps[0].params.kind: invalid value 'Pod' for {RBAC}: "
        "Input should be 'ClusterRoleBinding', 'RoleBinding', 'ClusterRole' or 'Role'"
    ],
    "bad-reference-path.yaml": [
        "playbook 'bad-reference-path': steps[0].params.name: bad reference ${targets.rbac_nam}: "
        f"unknown target field 'rbac_nam' (expected one of {TARGET_FIELDS}); did you mean 'rbac_name'?"
    ],
    "bad-regex.yaml": [
        "playbook 'bad-regex': when[0].regex: invalid regular expression '^(system:': "
        "missing ), unterminated subpattern at position 1"
    ],
    "bad-yaml.yaml": ["line 5, column 10: invalid YAML: mapping values are not allowed in this context"],
    "cluster-kind-with-namespace.yaml": [
        f"playbook 'cluster-kind-with-namespace': steps[0].params.namespace: invalid value 'default' for {RBAC}: "
        "must be left out for kind ClusterRoleBinding, which is cluster-wide"
    ],
    "dup-2-same-name.yaml": [
        f"playbook 'dup-original': name: 'dup-original' is already the name of {BROKEN}/dup-1-original.yaml"
    ],
    "duplicate-key.yaml": ["line 19, column 1: invalid YAML: duplicate key 'name' (first on line 1)"],
    "escalate-without-target.yaml": [
        "playbook 'escalate-without-target': approval.escalate_to: required when on_timeout is escalate"
    ],
    "min-approvals-zero.yaml": [
        "playbook 'min-approvals-zero': approval.min_approvals: expected a whole number of at least 1, got 0 (a number)"
    ],
    "missing-name.yaml": ["name: missing required key"],
    "missing-required-param.yaml": [
        f"playbook 'missing-required-param': steps[0].params.name: missing required parameter of {RBAC}"
    ],
    "not-a-mapping.yaml": ["expected a playbook mapping at the top level, got a list"],
    "unknown-action.yaml": [
        "playbook 'unknown-action': steps[0].action: unknown action 'kubernetes.delete_rbac' "
        f"(known actions: {KNOWN_ACTIONS}); did you mean '{RBAC}'?"
    ],
    "unknown-param.yaml": [
        f"playbook 'unknown-param': steps[0].params.kindd: unknown parameter of {RBAC} "
        "(expected one of cluster, kind, name, namespace); did you mean 'kind'?",
        f"playbook 'unknown-param': steps[0].params.kind: missing required parameter of {RBAC}",
    ],
    "unknown-severity.yaml": [
        "playbook 'unknown-severity': on.min_severity: unknown severity 'severe' "
        "(expected one of informational, low, medium, high, critical)"
    ],
    "unknown-top-level-key.yaml": [
        "playbook 'unknown-top-level-key': notify_channel: unknown key "
        "(expected one of name, description, on, steps, approval, when, notify, group_by); did you mean 'notify'?"
    ],
}


def test_every_problem_of_the_broken_folder_is_reported_with_file_playbook_and_field() -> None:
    expected = [f"{BROKEN / name}: {message}" for name in sorted(EXPECTED) for message in EXPECTED[name]]
    assert check_playbooks(BROKEN) == expected


def test_every_broken_file_is_covered() -> None:
    assert {path.name for path in BROKEN.glob("*.yaml")} == set(EXPECTED) | {"dup-1-original.yaml"}


def test_load_raises_one_error_listing_them_all() -> None:
    with pytest.raises(PlaybookErrors) as caught:
        load_playbooks(BROKEN)
    assert caught.value.errors == check_playbooks(BROKEN)
    text = str(caught.value)
    assert text.startswith(f"{len(caught.value.errors)} playbook errors:\n")
    assert all(error in text for error in caught.value.errors)


def test_an_empty_or_absent_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a playbook")
    assert check_playbooks(tmp_path) == [f"{tmp_path}: no playbooks (*.yaml or *.yml files) found"]
    assert check_playbooks(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a directory"]


# --- smaller cases in tmp_path ---------------------------------------------------------------------

VALID = """\
name: isolate
description: Isolate the pod.
on:
  source: defender
  types: [K8S_PrivilegedContainer]
steps:
  - action: kubernetes.isolate_pod
    params: {cluster: "${targets.cluster_resource_id}", namespace: "${targets.namespace}", pod: "${targets.pod}"}
approval:
  approvers: [U000SECOPS1]
"""


def _errors(tmp_path: Path, text: str, name: str = "p.yaml") -> list[str]:
    (tmp_path / name).write_text(textwrap.dedent(text))
    prefix = f"{tmp_path / name}: "
    errors = check_playbooks(tmp_path)
    assert all(error.startswith(prefix) for error in errors), errors
    return [error.removeprefix(prefix) for error in errors]


def test_a_minimal_playbook_takes_the_defaults(tmp_path: Path) -> None:
    assert _errors(tmp_path, VALID) == []
    playbook = load_playbooks(tmp_path).playbooks[0]
    assert (playbook.approval.mode, playbook.approval.min_approvals) == (ApprovalMode.REQUIRED, 1)
    assert (playbook.approval.timeout, playbook.approval.on_timeout) == (timedelta(minutes=30), OnTimeout.DENY)
    assert (playbook.notify, playbook.group_window, playbook.min_severity) == (None, timedelta(minutes=15), None)


def test_yml_files_count_and_other_files_do_not(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("ignored")
    assert _errors(tmp_path, VALID, name="isolate.yml") == []
    assert len(load_playbooks(tmp_path)) == 1


def test_on_no_and_off_stay_strings_under_yaml_1_2(tmp_path: Path) -> None:
    text = (
        VALID.replace("approvers: [U000SECOPS1]", "approvers: ['@no']")
        + "when:\n  - {field: title, in: [no, off, yes]}\n"
    )
    assert _errors(tmp_path, text) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("types: [K8S_PrivilegedContainer]", "types: []"), "on.types: expected at least one type"),
        (
            ("source: defender", "source: acr"),
            "on.source: expected one of registry, defender, got 'acr' (a string)",
        ),
        (
            ("approvers: [U000SECOPS1]", "approvers: [U000SECOPS1, U000SECOPS1]"),
            "approval.approvers: U000SECOPS1 is listed more than once",
        ),
        (
            ("approvers: [U000SECOPS1]", "approvers: [U000SECOPS1]\n  min_approvals: 2"),
            "approval.min_approvals: 2 approvals needed but only 1 approver(s) listed",
        ),
        (
            ("approvers: [U000SECOPS1]", "approvers: [secops]"),
            "approval.approvers[0]: expected a Slack user id (U...) or group handle (@name), got 'secops' (a string)",
        ),
        (
            ("approvers: [U000SECOPS1]", "mode: required"),
            "approval.approvers: required when mode is required: who may approve?",
        ),
        (
            (
                "approvers: [U000SECOPS1]",
                "approvers: [U000SECOPS1]\n  escalate_to: secops-leads\n  on_timeout: escalate",
            ),
            "approval.escalate_to: must be a Slack channel (#name or a C... id) or a user-group handle (@name), "
            "got 'secops-leads' (a string)",
        ),
        (
            ('pod: "${targets.pod}"', 'pod: "${targets.pod"'),
            "steps[0].params.pod: unterminated reference in '${targets.pod': expected ${field} or ${field?}",
        ),
        (
            ('pod: "${targets.pod}"', 'pod: "${}"'),
            "steps[0].params.pod: empty reference: expected ${field} or ${field?}",
        ),
        (
            ('pod: "${targets.pod}"', 'pod: "${pod}"'),
            "steps[0].params.pod: bad reference ${pod}: unknown Signal field 'pod' (expected one of source, type, id, "
            "severity, title, description, actor, targets.<field>, extended_properties.<key>)",
        ),
        (
            ("steps:\n", "group_by: {keys: [targets.cluster]}\nsteps:\n"),
            "group_by.keys[0]: unknown target field "
            f"'cluster' (expected one of {TARGET_FIELDS}); did you mean 'cluster_resource_id'?",
        ),
        (
            ("name: isolate", "name: Isolate_Pod"),
            "name: expected a name of a-z, 0-9 and '-' (at most 63), got 'Isolate_Pod' (a string)",
        ),
        (
            ("steps:\n", "notify: secops\nsteps:\n"),
            "notify: must be a Slack channel (#name or a C... id) or a "
            "user-group handle (@name), got 'secops' (a string)",
        ),
        (
            ("steps:\n", "when:\n  - {field: severity, equals: urgent}\nsteps:\n"),
            "when[0].equals: unknown severity 'urgent' (expected one of informational, low, medium, high, critical)",
        ),
        (
            ("steps:\n", "when:\n  - {field: targets.pod, equals: a, glob: b}\nsteps:\n"),
            "when[0]: expected exactly one of equals, in, glob, regex, got 2",
        ),
        (
            ("steps:\n", "when:\n  - {field: targets.pod, equals: 8080}\nsteps:\n"),
            "when[0].equals: expected a string (quote numbers and booleans), got 8080 (a number)",
        ),
        (
            ("steps:\n", "when:\n  - {not: {field: targets.pod, in: [a]}, field: x}\nsteps:\n"),
            "when[0]: 'not' stands alone: expected {not: <condition>}",
        ),
    ],
)
def test_each_problem_is_named_precisely(tmp_path: Path, change: tuple[str, str], error: str) -> None:
    assert change[0] in VALID
    name = "Isolate_Pod" if "Isolate_Pod" in change[1] else "isolate"
    assert _errors(tmp_path, VALID.replace(*change)) == [f"playbook '{name}': {error}"]


def test_registry_types_are_checked_and_normalised(tmp_path: Path) -> None:
    text = VALID.replace("source: defender", "source: registry").replace(
        "[K8S_PrivilegedContainer]", "[ImagePushed, Microsoft.ContainerRegistry.ImageDeleted, ImageQuarantined]"
    )
    assert _errors(tmp_path, text) == [
        "playbook 'isolate': on.types[2]: unknown registry event type 'ImageQuarantined' (expected one of "
        "Microsoft.ContainerRegistry.ChartDeleted, Microsoft.ContainerRegistry.ChartPushed, "
        "Microsoft.ContainerRegistry.ImageDeleted, Microsoft.ContainerRegistry.ImagePushed, "
        "Microsoft.ContainerRegistry.ImageScanned)"
    ]
    (tmp_path / "p.yaml").write_text(text.replace(", ImageQuarantined", ""))
    assert load_playbooks(tmp_path).playbooks[0].types == (
        "Microsoft.ContainerRegistry.ImagePushed",
        "Microsoft.ContainerRegistry.ImageDeleted",
    )


def test_group_handles_lift_the_approver_count_check(tmp_path: Path) -> None:
    text = VALID.replace("approvers: [U000SECOPS1]", "approvers: ['@secops-oncall']\n  min_approvals: 3")
    assert _errors(tmp_path, text) == []


def test_auto_mode_needs_no_approvers(tmp_path: Path) -> None:
    cordon = VALID.replace("kubernetes.isolate_pod", "kubernetes.cordon_node").replace(
        'namespace: "${targets.namespace}", pod: "${targets.pod}"', 'node: "${targets.node}"'
    )
    assert _errors(tmp_path, cordon.replace("approvers: [U000SECOPS1]", "mode: auto")) == []


@pytest.mark.parametrize(
    ("approval", "path", "setting"),
    [
        ("{mode: auto}", "approval.mode", "mode: auto"),
        ("{approvers: [U000SECOPS1], on_timeout: auto_approve}", "approval.on_timeout", "on_timeout: auto_approve"),
    ],
)
def test_a_destructive_step_never_runs_unattended(tmp_path: Path, approval: str, path: str, setting: str) -> None:
    text = VALID.replace("approval:\n  approvers: [U000SECOPS1]", f"approval: {approval}")
    text = text.replace("steps:\n", "steps:\n  - action: notify\n    params: {message: hi}\n")
    assert _errors(tmp_path, text) == [
        f"playbook 'isolate': {path}: {setting} would run steps[1] (kubernetes.isolate_pod) without an approver, "
        "and it is destructive: use mode: required (and on_timeout: deny or escalate)"
    ]


def test_a_dollar_escape_writes_a_literal_reference(tmp_path: Path) -> None:
    text = VALID.replace('pod: "${targets.pod}"', 'pod: "${targets.pod}"').replace(
        "steps:\n", "steps:\n  - action: notify\n    params: {message: 'cost: $${HOME} for ${targets.pod?}'}\n", 1
    )
    assert _errors(tmp_path, text) == []
    step = load_playbooks(tmp_path).playbooks[0].steps[0]
    assert step.action == "notify"
    assert [type(part).__name__ for part in step.params[0][1].parts] == ["str", "Ref"]
    assert step.params[0][1].parts[0] == "cost: ${HOME} for "


def test_all_problems_of_one_file_are_reported_not_only_the_first(tmp_path: Path) -> None:
    text = VALID.replace("source: defender", "source: nowhere").replace("approvers: [U000SECOPS1]", "timeout: soon")
    text = text.replace("kubernetes.isolate_pod", "kubernetes.isolate")
    assert len(_errors(tmp_path, text)) == 4  # source, unknown action, bad timeout, no approvers
