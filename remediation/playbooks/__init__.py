"""Playbooks: YAML policy deciding which Signals get which remediation steps and whose approval.

`load_playbooks(directory)` validates a folder (`DEFAULT_PLAYBOOKS_DIR` is the repo's `playbooks/`)
against the action registry in `remediation.actions` and returns a `PlaybookSet`, or raises
`PlaybookErrors` naming file, playbook and field of every problem; `check_playbooks` returns those
messages for CI. `PlaybookSet.match(signal)` gives the `remediation.plans.Plan`s that fire for a
Signal from `remediation.signals`; `remediation.incidents` takes them on.

Modules: `loader` (files), `parse`/`steps`/`conditions`/`references`/`schema` (checking and
compiling YAML), `paths` (Signal field names), `model` (loaded form), `matcher`/`resolve` (plans).
"""

from __future__ import annotations

from remediation.playbooks.errors import PlaybookErrors
from remediation.playbooks.loader import check_playbooks, load_playbooks
from remediation.playbooks.matcher import PlaybookSet
from remediation.playbooks.model import Playbook, Step
from remediation.settings import DEFAULT_PLAYBOOKS_DIR

__all__ = [
    "DEFAULT_PLAYBOOKS_DIR",
    "Playbook",
    "PlaybookErrors",
    "PlaybookSet",
    "Step",
    "check_playbooks",
    "load_playbooks",
]
