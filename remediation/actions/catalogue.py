"""The action catalogue: every action a playbook may name, as the classes that implement it.

This is the one list. Playbook validation (`remediation.playbooks`) checks steps against it,
`docs/actions.md` and the permission manifests in `deploy/` are generated from or checked against
it (`remediation.actions.docs`), and `dispatch.ActionSet` binds each class to its family's runtime
for the executor. Adding an action means writing its class in its family and listing it there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from remediation.actions import container_registry, kubernetes, notify
from remediation.actions.base import AnyAction

ActionClass = type[AnyAction]

CATALOGUE: tuple[ActionClass, ...] = (*container_registry.ACTIONS, *kubernetes.ACTIONS, *notify.ACTIONS)


class UnknownAction(KeyError):
    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        super().__init__(name)
        self.name = name
        self.known = tuple(sorted(known or ACTIONS))

    def __str__(self) -> str:
        return f"unknown action {self.name!r} (known actions: {', '.join(self.known)})"


def index(classes: Iterable[ActionClass]) -> Mapping[str, ActionClass]:
    """Classes by playbook name; a name declared twice is an error at load, not a silent override."""
    by_name: dict[str, ActionClass] = {}
    for cls in classes:
        if cls.name in by_name:
            raise TypeError(f"action {cls.name} is declared twice: {by_name[cls.name].__name__} and {cls.__name__}")
        by_name[cls.name] = cls
    for cls in by_name.values():
        if cls.inverse is not None and cls.inverse not in by_name:
            raise TypeError(f"action {cls.name} names an inverse that is not in the catalogue: {cls.inverse}")
    return MappingProxyType(by_name)


ACTIONS: Mapping[str, ActionClass] = index(CATALOGUE)


def get_action(name: str) -> ActionClass:
    try:
        return ACTIONS[name]
    except KeyError:
        raise UnknownAction(name) from None
