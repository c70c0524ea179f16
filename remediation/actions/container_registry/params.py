"""The parameter types the container registry actions share: registry, repository, tag and digest.

The actions' own models live with them in `tags`. Names follow the OCI distribution rules ACR
enforces, so a bad repository or tag is refused before anyone is asked to approve it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from remediation.actions.base import ActionParams

_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::[0-9]{1,5})?$")
_REGISTRY_ID = re.compile(
    r"^/subscriptions/[^/\s]+/resourcegroups/[^/\s]+/providers/microsoft\.containerregistry/registries/[^/\s]+$",
    re.IGNORECASE,
)
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


def _registry(value: str) -> str:
    if not (_HOST.fullmatch(value.lower()) or _REGISTRY_ID.fullmatch(value)):
        raise ValueError("must be a registry login server (myregistry.azurecr.io) or a registry resource id")
    return value


def _repository(value: str) -> str:
    if len(value) > 256 or not _REPOSITORY.fullmatch(value):
        raise ValueError("must be a repository name: lower-case path components separated by '/'")
    return value


def _tag(value: str) -> str:
    if not _TAG.fullmatch(value):
        raise ValueError("must be a tag: letters, digits, '_', '.' and '-', at most 128 characters")
    return value


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise ValueError("must be a digest such as sha256:<64 hex digits>")
    return value


# The descriptions feed the generated action catalogue.
Registry = Annotated[
    str, AfterValidator(_registry), Field(description="login server (myregistry.azurecr.io) or registry resource id")
]
Repository = Annotated[str, AfterValidator(_repository), Field(description="OCI repository name")]
Tag = Annotated[str, AfterValidator(_tag)]
Digest = Annotated[str, AfterValidator(_digest)]


class TagParams(ActionParams):
    registry: Registry
    repository: Repository
    tag: Tag


def azure_data_actions(*actions: str) -> tuple[str, ...]:
    """Permissions in the catalogue's form: `azure: Microsoft.ContainerRegistry/registries/<action>`."""
    return tuple(f"azure: Microsoft.ContainerRegistry/registries/{action}" for action in actions)
