"""The audit trail: an append-only, hash-chained record of everything that happened to an incident.

One chain per incident. Each record carries the hash of the one before it, and a per-incident head
(count, last hash) anchors the end, so an edited, deleted or truncated record is found by `verify`.
With a key (REMEDIATION_AUDIT_KEY) each record's hash is an HMAC-SHA256 and the record names the
key's id, so keys can rotate: only a holder of the key can re-seal an edited chain. Without a key
the hashes are plain SHA-256, which anyone with write access to the table can recompute: an unkeyed
chain proves ordering, not authorship. See docs/security.md for what the chain does not prove.
This module holds the record shapes, the hashing, the pure chain check and `InMemoryAuditLog`;
`remediation.store.audit.TableAuditLog` is the Table-backed log with the same semantics.
Incident stores (`remediation.incidents`, `remediation.store.incidents`) append the records that
describe their state changes; the executor may append its own (kind "step", ...).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from remediation.clock import timestamp

GENESIS_HASH = "0" * 64
MAX_DETAILS_CHARS = 16_000  # keeps a record far below the 64 KiB limit of one Table property


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def truncate_json(value: Any, *, max_chars: int) -> Any:
    """`value` with its longest strings cut until its canonical JSON is at most `max_chars` long."""
    if len(canonical_json(value)) <= max_chars:
        return value
    cap = max_chars
    while cap > 16:
        cap //= 2
        shortened = _cap_strings(value, cap)
        if len(canonical_json(shortened)) <= max_chars:
            return shortened
    return {"truncated": canonical_json(value)[: max(0, max_chars - 40)]}


def _cap_strings(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap] + "…[truncated]"
    if isinstance(value, Mapping):
        return {key: _cap_strings(item, cap) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cap_strings(item, cap) for item in value]
    return value


_KEY_ID_MESSAGE = b"remediation audit key id"


def key_id(secret: str) -> str:
    """A short public name of a key, derived from it (an HMAC, so it reveals nothing usable)."""
    return hmac.new(secret.encode("utf-8"), _KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The chain's HMAC keys: `current` seals new records; `old` ones (before a rotation) only verify."""

    current: str | None = field(default=None, repr=False)
    old: tuple[str, ...] = field(default=(), repr=False)

    @property
    def configured(self) -> bool:
        return bool(self.current or self.old)

    @property
    def signing(self) -> tuple[str, bytes] | None:
        """(key id, key) that seals new records, or None: records are unkeyed."""
        return (key_id(self.current), self.current.encode("utf-8")) if self.current else None

    def key_for(self, wanted: str) -> bytes | None:
        for secret in (self.current, *self.old):
            if secret and key_id(secret) == wanted:
                return secret.encode("utf-8")
        return None


NO_KEYS = AuditKeys()


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, before it is numbered and chained. `details` must be JSON-ready."""

    kind: str  # opened, transition, approval, rejection, input, escalation, break_glass, expiry, step, ...
    actor: str
    at: datetime
    from_state: str | None = None
    to_state: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: str  # see `remediation.clock.timestamp`
    incident_id: str
    kind: str
    actor: str
    from_state: str | None
    to_state: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str
    key_id: str | None = None  # the id of the HMAC key that sealed it; None: plain SHA-256

    def body(self) -> dict[str, Any]:
        """Everything the hash covers: the record without `hash` (and without `key_id` when unkeyed,
        so records sealed before keys existed keep their hashes)."""
        data = asdict(self)
        del data["hash"]
        if data["key_id"] is None:
            del data["key_id"]
        return data

    def computed_hash(self, key: bytes | None = None) -> str:
        """HMAC-SHA256 of the body under `key`, or its plain SHA-256 without one."""
        content = canonical_json(self.body()).encode("utf-8")
        return hmac.new(key, content, hashlib.sha256).hexdigest() if key else hashlib.sha256(content).hexdigest()


def seal(*, incident_id: str, seq: int, prev_hash: str, event: AuditEvent, keys: AuditKeys = NO_KEYS) -> AuditRecord:
    """Number and chain `event`, keyed with `keys.current` when there is one; long detail strings are
    truncated first, so the hash covers what is stored."""
    plain = json.loads(json.dumps(dict(event.details), default=str))  # tuples -> lists, datetimes -> text
    details = truncate_json(plain, max_chars=MAX_DETAILS_CHARS)
    unsealed = AuditRecord(
        seq=seq,
        at=timestamp(event.at),
        incident_id=incident_id,
        kind=event.kind,
        actor=event.actor,
        from_state=event.from_state,
        to_state=event.to_state,
        details=details,
        prev_hash=prev_hash,
        hash="",
    )
    signing = keys.signing
    if signing is None:
        return AuditRecord(**{**unsealed.body(), "hash": unsealed.computed_hash()})
    keyed = replace(unsealed, key_id=signing[0])
    return replace(keyed, hash=keyed.computed_hash(signing[1]))


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The anchor of one chain: how many records it holds and the hash of the last one."""

    count: int
    last_hash: str
    revision: int = 0  # highest incident revision recorded (makes a retried append a no-op)


@dataclass(frozen=True, slots=True)
class AuditProblem:
    incident_id: str
    seq: int | None
    kind: str  # edited, chain_broken, deleted, truncated, head_missing, unreadable, cannot check, unkeyed
    message: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "chain"
        return f"audit {self.incident_id} {where}: {self.kind}: {self.message}"


def check_chain(
    incident_id: str, records: Iterable[AuditRecord], head: AuditHead | None, *, keys: AuditKeys = NO_KEYS
) -> list[AuditProblem]:
    """Every way the stored chain differs from an untouched one, each naming the incident and seq.

    A record sealed with a key `keys` does not hold cannot be checked, and one without a key cannot
    prove who wrote it once keys are configured: both are reported, grouped per chain.
    """
    chain = sorted(records, key=lambda record: record.seq)
    problems: list[AuditProblem] = []
    unchecked: dict[str | None, list[int]] = {}

    def problem(seq: int | None, kind: str, message: str) -> None:
        problems.append(AuditProblem(incident_id=incident_id, seq=seq, kind=kind, message=message))

    expected_seq, prev_hash = 1, GENESIS_HASH
    for record in chain:
        if record.seq > expected_seq:
            problem(expected_seq, "deleted", f"records {expected_seq}..{record.seq - 1} are missing (deleted)")
        elif record.prev_hash != prev_hash:
            problem(record.seq, "chain_broken", f"prev_hash does not match record {record.seq - 1}")
        key = keys.key_for(record.key_id) if record.key_id else None
        if (record.key_id and key is None) or (record.key_id is None and keys.configured):
            unchecked.setdefault(record.key_id, []).append(record.seq)
        if (key is not None or record.key_id is None) and record.computed_hash(key) != record.hash:
            problem(record.seq, "edited", "content does not match its hash")
        expected_seq, prev_hash = record.seq + 1, record.hash
    problems += [_unchecked(incident_id, kid, seqs) for kid, seqs in unchecked.items()]
    if head is None:
        if chain:
            problem(None, "head_missing", f"{len(chain)} records but no head row")
        return problems
    last_seq = chain[-1].seq if chain else 0
    if head.count != last_seq:
        first_missing = last_seq + 1 if head.count > last_seq else head.count + 1
        problem(first_missing, "truncated", f"head counts {head.count} records, the chain ends at {last_seq}")
    elif head.last_hash != prev_hash:
        problem(last_seq, "edited", "last record does not match the hash in the head")
    return problems


def _unchecked(incident_id: str, kid: str | None, seqs: list[int]) -> AuditProblem:
    one = len(seqs) == 1
    which = f"record {seqs[0]} is" if one else f"records {', '.join(map(str, seqs))} are"
    if kid is None:
        why = f"{which} sealed without a key: {'it proves' if one else 'they prove'} ordering, not authorship"
        return AuditProblem(incident_id=incident_id, seq=seqs[0], kind="unkeyed", message=why)
    why = f"{which} sealed with key id {kid}, which is neither REMEDIATION_AUDIT_KEY nor in REMEDIATION_AUDIT_OLD_KEYS"
    return AuditProblem(incident_id=incident_id, seq=seqs[0], kind="cannot check", message=why)


class AuditLog(Protocol):
    """An append-only per-incident chain; appends never fork it, even when concurrent."""

    def append(
        self,
        *,
        incident_id: str,
        event: AuditEvent,
        revision: int | None = None,
    ) -> AuditRecord | None:
        """Chain `event` to the incident's trail and return the record.

        With `revision` (the incident revision the event describes), an event whose revision the
        chain already holds is not appended again and None is returned: a retried flush is a no-op.
        """
        ...

    def records(self, incident_id: str) -> list[AuditRecord]: ...

    def verify(self, incident_id: str | None = None) -> list[AuditProblem]:
        """Problems of one incident's chain, or of every chain; empty when untouched."""
        ...


class InMemoryAuditLog:
    """An AuditLog in process memory, for tests, the CLI and benchmarks."""

    def __init__(self, *, keys: AuditKeys = NO_KEYS) -> None:
        self._keys = keys
        self._records: dict[str, list[AuditRecord]] = {}
        self._heads: dict[str, AuditHead] = {}
        self._lock = threading.Lock()

    def append(self, *, incident_id: str, event: AuditEvent, revision: int | None = None) -> AuditRecord | None:
        with self._lock:
            head = self._heads.get(incident_id, AuditHead(count=0, last_hash=GENESIS_HASH))
            if revision is not None and head.revision >= revision:
                return None
            record = seal(
                incident_id=incident_id, seq=head.count + 1, prev_hash=head.last_hash, event=event, keys=self._keys
            )
            self._records.setdefault(incident_id, []).append(record)
            self._heads[incident_id] = AuditHead(
                count=record.seq, last_hash=record.hash, revision=max(head.revision, revision or 0)
            )
            return record

    def records(self, incident_id: str) -> list[AuditRecord]:
        with self._lock:
            return list(self._records.get(incident_id, ()))

    def verify(self, incident_id: str | None = None) -> list[AuditProblem]:
        with self._lock:
            ids: Sequence[str] = sorted(self._records) if incident_id is None else [incident_id]
            return [
                problem
                for one in ids
                for problem in check_chain(one, self._records.get(one, ()), self._heads.get(one), keys=self._keys)
            ]
