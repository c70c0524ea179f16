"""The registry's data plane as the quarantine needs it: tag and manifest attributes, tag deletion.

Neighbours: `lock` and `move` call these; `clients` provides the ContainerRegistryClient (whose
challenge policy does the `/oauth2/exchange` and `/oauth2/token` dance on each call); `calls`
retries. Attributes travel as plain dicts of the four ACR flags, so they go into snapshots,
StepResults and previews unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from remediation.actions.container_registry.calls import call, status_of
from remediation.actions.container_registry.clients import RegistryClients
from remediation.actions.container_registry.resolve import RegistryRef
from remediation.actions.runtime import PermanentFailure
from remediation.retry import RetryPolicy

FLAGS = ("can_read", "can_write", "can_delete", "can_list")
LOCKED = {"can_read": False, "can_write": False, "can_delete": False}  # list stays: the tag stays visible
DEFAULTS = dict.fromkeys(FLAGS, True)  # what ACR gives a freshly pushed tag or manifest

Attributes = dict[str, bool]


class TagNotFound(PermanentFailure):
    """The tag does not exist (any more)."""


@dataclass(frozen=True, slots=True)
class TagState:
    digest: str
    tag: Attributes
    manifest: Attributes

    def locked(self) -> bool:
        return all(self.tag.get(k) == v and self.manifest.get(k) == v for k, v in LOCKED.items())


def _flags(props: Any) -> Attributes:
    return {flag: bool(getattr(props, flag)) for flag in FLAGS if getattr(props, flag) is not None}


class RegistryData:
    def __init__(self, *, clients: RegistryClients, retry: RetryPolicy) -> None:
        self._clients = clients
        self._retry = retry

    def read(self, ref: RegistryRef, repository: str, tag: str) -> TagState:
        """The tag's digest and the attributes of the tag and of its manifest."""
        client = self._clients.data(ref.login_server)
        where = f"{ref.login_server}/{repository}:{tag}"
        try:
            props = call(lambda: client.get_tag_properties(repository, tag), what=f"read {where}", policy=self._retry)
        except PermanentFailure as failure:
            if status_of(failure.__cause__ or failure) == 404:
                raise TagNotFound(f"{where} does not exist: {failure}") from failure
            raise
        digest = str(props.digest)
        manifest = call(
            lambda: client.get_manifest_properties(repository, digest),
            what=f"read {ref.login_server}/{repository}@{digest}",
            policy=self._retry,
        )
        return TagState(digest=digest, tag=_flags(props), manifest=_flags(manifest))

    def exists(self, ref: RegistryRef, repository: str, tag: str) -> str | None:
        """The tag's digest, or None when there is no such tag."""
        try:
            client = self._clients.data(ref.login_server)
            props = call(
                lambda: client.get_tag_properties(repository, tag),
                what=f"read {ref.login_server}/{repository}:{tag}",
                policy=self._retry,
            )
        except PermanentFailure as failure:
            if status_of(failure.__cause__ or failure) == 404:
                return None
            raise
        return str(props.digest)

    def set_tag(self, ref: RegistryRef, repository: str, tag: str, attributes: Attributes) -> None:
        client = self._clients.data(ref.login_server)
        call(
            lambda: client.update_tag_properties(repository, tag, **attributes),
            what=f"update {ref.login_server}/{repository}:{tag}",
            policy=self._retry,
        )

    def set_manifest(self, ref: RegistryRef, repository: str, digest: str, attributes: Attributes) -> None:
        client = self._clients.data(ref.login_server)
        call(
            lambda: client.update_manifest_properties(repository, digest, **attributes),
            what=f"update {ref.login_server}/{repository}@{digest}",
            policy=self._retry,
        )

    def delete_tag(self, ref: RegistryRef, repository: str, tag: str) -> None:
        client = self._clients.data(ref.login_server)
        call(
            lambda: client.delete_tag(repository, tag),
            what=f"delete {ref.login_server}/{repository}:{tag}",
            policy=self._retry,
        )

    def tags(self, ref: RegistryRef, repository: str) -> dict[str, str]:
        """tag -> digest of every tag of a repository; empty when the repository does not exist."""
        client = self._clients.data(ref.login_server)
        try:
            return call(
                lambda: {str(t.name): str(t.digest) for t in client.list_tag_properties(repository)},
                what=f"list tags of {ref.login_server}/{repository}",
                policy=self._retry,
            )
        except PermanentFailure as failure:
            if status_of(failure.__cause__ or failure) == 404:
                return {}
            raise
