"""`remediate audit verify [--incident ID]`: find edited, deleted or missing audit records.

Keyed chains are checked with REMEDIATION_AUDIT_KEY and REMEDIATION_AUDIT_OLD_KEYS from the
environment; records sealed with a key id neither holds are reported as "cannot check" (which
records, which key id), and with keys set, records sealed without one as "unkeyed". With no key set,
stderr says so: an unkeyed chain proves ordering, not authorship.

Read-only: the store is opened with `create=False` and both tables are looked up first, so a wrong
account or table name is reported, never created. Findings go to stdout, one line each; the count
("N audit chain(s) checked, M problem(s)") and errors go to stderr, one line, never a traceback.
Exit codes (`remediation.cli.common`): 0 every chain intact; 1 problems found (a broken chain, an
incident without audit records, an `--incident` that does not exist, a missing table); 2 a usage or
settings error (an `--incident` no table key can hold, AzureWebJobsStorage unset or malformed); 3
storage unreachable or refusing us (connection, DNS, timeout, 401/403, no token for an identity, any
other storage error). Storage is reached as the app reaches it (`remediation.compose.Components.storage`):
AzureWebJobsStorage's connection string, or its identity-based settings (`AzureWebJobsStorage__accountName`
or the `__*ServiceUri`s, `__credential`, `__clientId`) with a token from azure-identity, no account key.
Neighbours: `remediation.store.incidents.TableIncidentStore` and its `TableAuditLog` do the reading;
`remediation.audit` defines what a problem is.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import TYPE_CHECKING

from remediation.cli.common import EXIT_FOUND, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from remediation.settings import Settings, SettingsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.exceptions import AzureError

    from remediation.store.clients import StorageAccess
    from remediation.store.incidents import TableIncidentStore

PROG = "remediate audit verify"
UNKEYED = "unkeyed: proves ordering, not authorship (REMEDIATION_AUDIT_KEY is not set)"
# What a table key may hold (no / \ # ?, no control characters, 1 KiB): any other `--incident` is a
# usage error, not a storage error from the service.
_KEY = re.compile(r"[^/\\#?\x00-\x1f\x7f]{1,512}")


def verify(*, incident: str | None, connection_string: str | None, credential: TokenCredential | None = None) -> int:
    """The command; `credential` (default: the host's, see `remediation.compose`) is for identity-based storage."""
    from azure.core.exceptions import AzureError

    from remediation.compose import compose, keyed_audit
    from remediation.store.incidents import TableIncidentStore

    if incident is not None and not _KEY.fullmatch(incident):
        return _fail(EXIT_USAGE, f"{PROG}: --incident {incident[:80]!r} cannot be an incident id")
    try:
        settings = Settings.from_env(require_storage=not connection_string)
        if connection_string:  # the other settings (table names) still come from the environment
            settings = dataclasses.replace(settings, storage_connection=connection_string)
        storage = compose(settings, credential=credential).storage()
        store = keyed_audit(
            TableIncidentStore.from_storage(
                storage, table_name=settings.incidents_table, audit_table=settings.audit_table, create=False
            ),
            settings,
        )
    except SettingsError as problem:
        return _fail(EXIT_USAGE, f"{PROG}: {_first_line(problem)}")
    except ValueError as problem:  # what the SDK raises for a malformed connection string
        return _fail(EXIT_USAGE, f"{PROG}: the storage connection string: {_first_line(problem)}")
    try:
        with store:
            missing = _missing_tables(settings, storage)
            checked, problems = (0, missing) if missing else _check(store, incident)
    except AzureError as error:
        return _fail(EXIT_UNREACHABLE, f"{PROG}: {_storage_problem(error)}")
    for line in problems:
        print(line)
    if not (settings.audit_key or settings.audit_old_keys):
        print(UNKEYED, file=sys.stderr)
    print(f"{checked} audit chain(s) checked, {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_FOUND if problems else EXIT_OK


def _check(store: TableIncidentStore, incident: str | None) -> tuple[int, list[str]]:
    """(chains checked, problems): every chain of the audit table, or `incident`'s only."""
    found = store.audit.verify(incident)
    flagged = {problem.incident_id for problem in found}
    problems = [str(problem) for problem in found]
    if incident is None:
        wanted = [known.id for known in store.list()]
    elif store.get(incident) is None:
        wanted = []
        problems.append(f"incident {incident}: not found")
    else:
        wanted = [incident]
    problems += [
        f"incident {one}: has no audit records" for one in wanted if one not in flagged and not store.audit.records(one)
    ]
    return len(flagged | set(wanted)), problems


def _missing_tables(settings: Settings, storage: StorageAccess) -> list[str]:
    """A line for each of the two tables that this account does not have (looked up, not created)."""
    with storage.table_service() as service:
        return [
            f"no {role} table '{name}' in this account"
            for role, name in (("incidents", settings.incidents_table), ("audit", settings.audit_table))
            if not any(service.query_tables("TableName eq @name", parameters={"name": name}))
        ]


def _storage_problem(error: AzureError) -> str:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    status = getattr(error, "status_code", None)
    if isinstance(error, ClientAuthenticationError) and status is None:  # azure-identity got no token
        return f"no storage token from the identity: {_first_line(error)}"
    if isinstance(error, ClientAuthenticationError) or status in (401, 403):
        return f"storage refused the credentials (HTTP {status}): {_first_line(error)}"
    if isinstance(error, HttpResponseError):
        return f"storage answered HTTP {status}: {_first_line(error)}"
    return f"storage unreachable: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _fail(code: int, message: str) -> int:
    print(message, file=sys.stderr)
    return code
