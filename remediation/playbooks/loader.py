"""Reading a playbook folder: YAML files in, a `PlaybookSet` or every error of the folder out.

One playbook per `*.yaml`/`*.yml` file directly in the folder, read in file-name order. YAML is
read with YAML 1.2 booleans (so the `on:` key stays a key, and `no`/`off` stay strings) and
duplicate keys are errors, since a repeated `steps:` would otherwise silently drop the first.
Each file is parsed by `parse`; names must be unique across the folder. The engine and CI call
`load_playbooks`/`check_playbooks`; `matcher` does the rest.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml

from remediation.actions.catalogue import ACTIONS, ActionClass
from remediation.playbooks.errors import PlaybookErrors, Problems
from remediation.playbooks.matcher import PlaybookSet
from remediation.playbooks.model import Playbook
from remediation.playbooks.parse import parse_playbook
from remediation.playbooks.schema import kind_of

SUFFIXES = (".yaml", ".yml")
_BOOL = "tag:yaml.org,2002:bool"


# libyaml's parser where PyYAML was built with it: the shipped playbooks parse eight times faster.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PlaybookYamlLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 booleans and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in first_line:
                problem = f"duplicate key {key!r} (first on line {first_line[key]})"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            if isinstance(key, str):
                first_line[key] = key_node.start_mark.line + 1
        mapping: dict[Hashable, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_PlaybookYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PlaybookYamlLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_playbooks(directory: Path | str, *, actions: Mapping[str, ActionClass] = ACTIONS) -> PlaybookSet:
    """Every playbook of `directory`; PlaybookErrors listing all problems if there is any.

    Steps are checked against `actions` (the catalogue, unless a caller brings its own)."""
    playbooks, errors = _load(Path(directory), actions)
    if errors:
        raise PlaybookErrors(errors)
    return PlaybookSet(playbooks)


def check_playbooks(directory: Path | str, *, actions: Mapping[str, ActionClass] = ACTIONS) -> list[str]:
    """Every problem of the folder, one message each; empty when it is valid."""
    return _load(Path(directory), actions)[1]


def _load(directory: Path, actions: Mapping[str, ActionClass]) -> tuple[list[Playbook], list[str]]:
    if not directory.is_dir():
        return [], [f"{directory}: not a directory"]
    files = sorted(path for path in directory.iterdir() if path.suffix in SUFFIXES and path.is_file())
    if not files:
        return [], [f"{directory}: no playbooks (*.yaml or *.yml files) found"]
    playbooks: list[Playbook] = []
    errors: list[str] = []
    first_file: dict[str, Path] = {}
    for path in files:
        problems = Problems(str(path))
        playbook = _load_file(path, problems, actions)
        if playbook is not None and playbook.name in first_file:
            problems.add("name", f"'{playbook.name}' is already the name of {first_file[playbook.name]}")
        elif playbook is not None:
            first_file[playbook.name] = path
            playbooks.append(playbook)
        errors += problems.messages()
    return playbooks, errors


def _load_file(path: Path, problems: Problems, actions: Mapping[str, ActionClass]) -> Playbook | None:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_PlaybookYamlLoader)
    except UnicodeDecodeError as problem:
        problems.add("", f"not UTF-8 text: {problem.reason} at byte {problem.start}")
        return None
    except yaml.MarkedYAMLError as problem:
        problems.add("", _yaml_message(problem))
        return None
    except yaml.YAMLError as problem:
        problems.add("", f"invalid YAML: {problem}")
        return None
    if not isinstance(document, dict):
        problems.add("", f"expected a playbook mapping at the top level, got {kind_of(document)}")
        return None
    return parse_playbook(document, path, problems, actions=actions)


def _yaml_message(problem: yaml.MarkedYAMLError) -> str:
    mark = problem.problem_mark or problem.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = f"{problem.context}: " if problem.context else ""
    return f"{where}invalid YAML: {context}{problem.problem}"
