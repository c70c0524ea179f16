"""Which implementation runs an action: one handler per action family, built when first needed.

Neighbours: the executor and the previewer look handlers up by action name; `functions/wiring.py`
builds a `HandlerSet` from settings, tests build one around local servers. A family nobody uses
(a registry-only deployment has no clusters) never reads its settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from remediation.actions.registry import get_action
from remediation.actions.runtime import ActionHandler

Factory = Callable[[], ActionHandler]


class HandlerSet:
    def __init__(self, *, families: dict[str, Factory]) -> None:
        """`families` maps the part of an action name before the dot (`kubernetes`, `registry`) or
        the whole name of a single action (`notify`) to a factory of its handler."""
        self._factories = families
        self._built: dict[str, ActionHandler] = {}
        self._lock = threading.Lock()

    def __call__(self, action: str) -> ActionHandler:
        get_action(action)  # UnknownAction for a name the registry does not know
        family = action if action in self._factories else action.partition(".")[0]
        with self._lock:
            if family not in self._built:
                if family not in self._factories:
                    raise LookupError(f"no handler is configured for {action}")
                self._built[family] = self._factories[family]()
            return self._built[family]


def from_env() -> HandlerSet:
    """The handlers of a deployed app, each configured from its own settings."""

    def kubernetes() -> ActionHandler:
        from remediation.actions.k8s import KubernetesActions

        return KubernetesActions.from_env()

    def registry() -> ActionHandler:
        from remediation.actions.containerregistry import RegistryActions

        return RegistryActions.from_env()

    def notify() -> ActionHandler:
        from remediation.actions.notify_handler import NotifyActions

        return NotifyActions()

    return HandlerSet(families={"kubernetes": kubernetes, "registry": registry, "notify": notify})
