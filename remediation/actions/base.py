"""What an action is: one class carrying its playbook name, parameters, permissions, example and code.

Neighbours: each family (`kubernetes/`, `container_registry/`, `notify`) defines its actions as
subclasses of `Action`; `catalogue` lists them (the one list); `dispatch.ActionSet` binds each to
the runtime its family needs (cluster clients, registry clients) and is what the executor calls.
A subclass that forgets a declaration fails when its module is imported, so a half-declared
action never reaches a playbook, let alone an execution.

Permissions read `"<system>: <permission>"`: `kubernetes: <[group/]resource> <verb>` for the
cluster role the bot's identity needs, `azure: <Azure RBAC (data) action>` for the registry, and
`slack: <OAuth scope>` for the bot token. `deploy/` and `docs/actions.md` are checked against them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from remediation.actions.runtime import PermanentFailure, Preview, StepContext, StepResult


class ActionParams(BaseModel):
    """Every action's parameter model: closed (a misspelt parameter is refused) and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class NoRuntime:
    """The runtime of an action that needs nothing from outside (`notify`)."""


P = TypeVar("P", bound=ActionParams)
R = TypeVar("R")

_DECLARED = ("name", "summary", "Params", "permissions", "example", "destructive")


class Action(ABC, Generic[P, R]):
    """One remediation action. Subclasses declare the class attributes and implement the three steps.

    `preview` reads the live target (or asks for a server-side dry run) and says what `apply` would
    do; `apply` binds to the approved target version, snapshots what it changes (write-once) and
    changes it; `undo` restores exactly what `apply` recorded. An action that cannot be undone says
    so with `reversible = False`; one whose undo is a separate action names it as `inverse`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[ActionParams]]
    permissions: ClassVar[tuple[str, ...]]
    example: ClassVar[Mapping[str, Any]]
    destructive: ClassVar[bool]  # removes, blocks or disrupts something in use: snapshot first
    inverse: ClassVar[str | None] = None  # the action that undoes this one, when it is a separate action
    reversible: ClassVar[bool] = True  # False: undo cannot bring back what apply removed (a deleted pod)
    break_glass: ClassVar[bool] = False  # True: its permissions are in the off-by-default break-glass role
    Runtime: ClassVar[type] = NoRuntime  # what the composition root hands to the constructor

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return  # a family's base class
        # ABCMeta computes __abstractmethods__ only after this hook has run, so look for them here.
        unimplemented = sorted(
            n
            for n in ("preview", "apply", "undo", *dir(cls))
            if getattr(getattr(cls, n, None), "__isabstractmethod__", False)
        )
        if unimplemented:
            raise TypeError(f"action {cls.__name__} does not implement {', '.join(unimplemented)}")
        missing = [attribute for attribute in _DECLARED if not hasattr(cls, attribute)]
        if missing:
            raise TypeError(f"action {cls.__name__} does not declare {', '.join(missing)}")
        if not (isinstance(cls.Params, type) and issubclass(cls.Params, ActionParams)):
            raise TypeError(f"action {cls.name}: Params must derive from ActionParams")
        if not cls.permissions:
            raise TypeError(f"action {cls.name}: declares no permissions")

    def __init__(self, runtime: R) -> None:
        self.runtime = runtime

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> ActionParams:
        """The typed parameters; pydantic.ValidationError when they do not fit the model."""
        return cls.Params.model_validate(params)

    @abstractmethod
    def preview(self, params: P, ctx: StepContext) -> Preview: ...

    @abstractmethod
    def apply(self, params: P, ctx: StepContext) -> StepResult: ...

    @abstractmethod
    def undo(self, params: P, result: StepResult, ctx: StepContext) -> StepResult: ...

    def typed(self, params: BaseModel) -> P:
        """`params` as this action's model; a PermanentFailure when the executor handed another."""
        if not isinstance(params, self.Params):
            raise PermanentFailure(f"{self.name} takes {self.Params.__name__}, not {type(params).__name__}")
        return params  # type: ignore[return-value]


AnyAction = Action[Any, Any]
