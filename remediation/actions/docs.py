"""The action catalogue in Markdown, generated from the classes: `docs/actions.md` is its output.

A test keeps the committed file equal to `render_action_catalogue()`, so the documentation can
never drift from `remediation.actions.catalogue`. `python -m remediation.actions.docs` regenerates it
and the permission manifests of `remediation.actions.manifests`.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic.fields import FieldInfo

from remediation.actions.catalogue import CATALOGUE, ActionClass

_HEADER = """\
# Action catalogue

Generated from `remediation.actions.catalogue` by `remediation.actions.docs.render_action_catalogue()`;
do not edit by hand. Playbook steps name these actions and pass these parameters; the loader rejects
anything else. Permissions read `kubernetes: <[group/]resource> <verb>`, `azure: <Azure RBAC action>`
or `slack: <OAuth scope>`.

| action | summary | parameters | permissions | destructive | inverse | example |
|---|---|---|---|---|---|---|
"""

_BOUNDS = ((Ge, "ge", ">="), (Gt, "gt", ">"), (Le, "le", "<="), (Lt, "lt", "<"))
_LENGTHS = ((MinLen, "min_length", "length >="), (MaxLen, "max_length", "length <="))


def render_action_catalogue(classes: Iterable[ActionClass] = CATALOGUE) -> str:
    rows = [_row(cls) for cls in sorted(classes, key=lambda cls: cls.name)]
    return _HEADER + "".join(f"| {' | '.join(_cell(c) for c in row)} |\n" for row in rows)


def _row(spec: ActionClass) -> list[str]:
    params = [_param(name, info) for name, info in spec.Params.model_fields.items()]
    return [
        f"`{spec.name}`",
        spec.summary,
        "<br>".join(params),
        "<br>".join(spec.permissions),
        "yes" if spec.destructive else "no",
        f"`{spec.inverse}`" if spec.inverse else "",
        f"`{json.dumps(spec.example)}`",
    ]


def _param(name: str, info: FieldInfo) -> str:
    text = f"`{name}`: {_type(info.annotation)}"
    text += " (required)" if info.is_required() else f" = `{json.dumps(info.default)}`"
    constraints = [
        f"{symbol} {getattr(m, attr)}"
        for m in info.metadata
        for kind, attr, symbol in _BOUNDS + _LENGTHS
        if isinstance(m, kind)
    ]
    if constraints:
        text += f", {', '.join(constraints)}"
    if info.description:
        text += f"; {info.description}"
    return text


def _type(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(json.dumps(arg) for arg in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type(arg) for arg in get_args(annotation))
    if origin is Annotated:
        return _type(get_args(annotation)[0])
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _cell(text: str) -> str:
    # A pipe would end the Markdown table cell.
    return text.replace("|", "\\|").replace("\n", " ")


def write_generated(root: Path, classes: Iterable[ActionClass] = CATALOGUE) -> list[Path]:
    """Write every file generated from the catalogue under `root`; the paths written."""
    from remediation.actions.admission import render_admission_policy
    from remediation.actions.manifests import render_break_glass_role, render_cluster_role, render_registry_role

    files = {
        root / "docs" / "actions.md": render_action_catalogue(classes),
        root / "deploy" / "kubernetes" / "rbac.yaml": render_cluster_role(classes),
        root / "deploy" / "kubernetes" / "break-glass.yaml": render_break_glass_role(classes),
        root / "deploy" / "kubernetes" / "admission-policy.yaml": render_admission_policy(),
        root / "deploy" / "azure" / "registry-remediator-role.json": render_registry_role(classes),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


if __name__ == "__main__":
    for written in write_generated(Path(__file__).resolve().parents[2]):
        sys.stdout.write(f"wrote {written}\n")
