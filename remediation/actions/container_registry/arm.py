"""The registry's control plane: `importImage`, a long-running operation polled to a bounded end.

Neighbours: `move` imports into and back from the quarantine repository; `clients` provides the
ContainerRegistryManagementClient; `calls` retries the start and classifies failures (an
ImageNotFound from the operation is permanent and keeps ACR's message).
"""

from __future__ import annotations

import logging
from typing import Literal

from remediation.actions.container_registry.calls import call
from remediation.actions.container_registry.clients import RegistryClients
from remediation.actions.container_registry.resolve import RegistryRef
from remediation.actions.runtime import TransientFailure
from remediation.retry import RetryPolicy

logger = logging.getLogger(__name__)


class RegistryControl:
    def __init__(self, *, clients: RegistryClients, retry: RetryPolicy, import_deadline_seconds: float = 300.0) -> None:
        self._clients = clients
        self._retry = retry
        self._deadline = import_deadline_seconds

    def import_image(self, ref: RegistryRef, *, source: str, target: str, mode: Literal["Force", "NoForce"]) -> None:
        """Copy `source` (`repo@digest` in the same registry) to the tag `target` (`repo:tag`).

        `Force` overwrites an existing target tag, `NoForce` fails if it exists. Polls until the
        operation ends, at most `import_deadline_seconds`; still running then is a TransientFailure.
        """
        client = self._clients.mgmt(ref.subscription_id)
        body = {
            "source": {"resourceId": ref.resource_id, "sourceImage": source},
            "targetTags": [target],
            "mode": mode,
        }
        what = f"import {ref.login_server}/{source} as {target}"

        def run() -> None:
            poller = client.registries.begin_import_image(
                ref.resource_group, ref.name, body, polling_interval=self._clients.endpoints.polling_interval
            )
            poller.result(timeout=self._deadline)
            if not poller.done():
                raise TransientFailure(f"{what}: still running after {self._deadline:.0f}s")

        call(run, what=what, policy=self._retry)
        logger.info("image imported", extra={"registry": ref.login_server, "source": source, "target": target})
