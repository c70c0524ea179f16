"""Settings of the Kubernetes actions, read once from the environment.

Neighbours: `connect` reads `kubeconfigs` and `request_timeout_seconds`, `guards` reads the protected
namespaces and the blast-radius fraction, `retry` the bounds. Names are listed in docs/kubernetes.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

DEFAULT_PROTECTED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "gatekeeper-system"})

ENV_PROTECTED_NAMESPACES = "REMEDIATION_PROTECTED_NAMESPACES"
ENV_MAX_UNSCHEDULABLE_FRACTION = "REMEDIATION_MAX_UNSCHEDULABLE_FRACTION"
ENV_KUBECONFIGS = "REMEDIATION_KUBECONFIGS"
ENV_REQUEST_TIMEOUT = "REMEDIATION_K8S_REQUEST_TIMEOUT_SECONDS"
ENV_RETRY_ATTEMPTS = "REMEDIATION_K8S_RETRY_ATTEMPTS"
ENV_RETRY_SECONDS = "REMEDIATION_K8S_RETRY_MAX_SECONDS"


class SettingsError(ValueError):
    """A setting that cannot be read; the message names the environment variable."""


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    protected_namespaces: frozenset[str] = DEFAULT_PROTECTED_NAMESPACES
    max_unschedulable_fraction: float = 1 / 3
    kubeconfigs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    request_timeout_seconds: float = 30.0
    retry_attempts: int = 5
    retry_max_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.max_unschedulable_fraction <= 1:
            raise SettingsError(f"{ENV_MAX_UNSCHEDULABLE_FRACTION} must be in (0, 1]")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KubernetesSettings:
        env = os.environ if environ is None else environ
        extra = {name.strip() for name in env.get(ENV_PROTECTED_NAMESPACES, "").split(",") if name.strip()}
        return cls(
            protected_namespaces=DEFAULT_PROTECTED_NAMESPACES | extra,
            max_unschedulable_fraction=_number(env, ENV_MAX_UNSCHEDULABLE_FRACTION, 1 / 3),
            kubeconfigs=MappingProxyType(_kubeconfigs(env.get(ENV_KUBECONFIGS, ""))),
            request_timeout_seconds=_number(env, ENV_REQUEST_TIMEOUT, 30.0),
            retry_attempts=int(_number(env, ENV_RETRY_ATTEMPTS, 5)),
            retry_max_seconds=_number(env, ENV_RETRY_SECONDS, 60.0),
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, not {raw!r}")
    return value


def _kubeconfigs(raw: str) -> dict[str, str]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{ENV_KUBECONFIGS} must be a JSON object: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise SettingsError(f'{ENV_KUBECONFIGS} must map cluster names to kubeconfig paths: {{"name": "/path"}}')
    return {key.lower(): value for key, value in data.items()}
