"""Typed readers for untrusted JSON: times, strings, objects, image references, resource ids.

Shared by the registry and Defender normalisers. Every reader either returns a well-typed value
or raises InvalidEvent naming the field, so a normaliser never trips over a wrong type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from remediation.signals.model import InvalidEvent

_CLUSTER_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.containerservice/managedclusters/[^/]+$",
    re.IGNORECASE,
)
_REGISTRY_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.containerregistry/registries/[^/]+$",
    re.IGNORECASE,
)
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


def optional_str(obj: Mapping[str, Any], key: str, *, where: str) -> str | None:
    """The string at `key`, None when absent, null or empty; any other type is invalid."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{where}{key} must be a string, got {type(value).__name__}")
    return value


def required_str(obj: Mapping[str, Any], key: str, *, where: str) -> str:
    value = optional_str(obj, key, where=where)
    if value is None:
        raise InvalidEvent(f"{where}{key} is missing")
    return value


def optional_object(obj: Mapping[str, Any], key: str, *, where: str) -> Mapping[str, Any]:
    """The object at `key`, an empty mapping when absent or null."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"{where}{key} must be an object, got {type(value).__name__}")
    return value


def parse_time(text: str, *, field: str) -> datetime:
    """ISO 8601 with up to nanosecond fractions (Azure sends 7 digits); naive times are UTC."""
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidEvent(f"{field} {text[:64]!r} is not an ISO 8601 time") from None


def cluster_id(value: str | None) -> str | None:
    """`value` when it names an AKS managed cluster, else None."""
    if value and _CLUSTER_ID.match(value):
        return value
    return None


def registry_id(value: str | None) -> str | None:
    """`value` when it names a container registry, else None."""
    if value and _REGISTRY_ID.match(value):
        return value
    return None


class ImageReference(NamedTuple):
    login_server: str | None
    repository: str | None
    tag: str | None
    digest: str | None


def parse_image_reference(reference: str) -> ImageReference:
    """Split `[registry/]repository[:tag][@digest]` the way Docker reads it.

    The first path component is a registry only when it looks like a host (has a dot or a port,
    or is localhost), so `library/nginx` stays a repository.
    """
    name, _, digest = reference.strip().partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :] or None
    login_server = None
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        login_server, name = first.lower(), rest
    valid_digest = digest if _DIGEST.match(digest) else None
    return ImageReference(login_server, name or None, tag, valid_digest)
