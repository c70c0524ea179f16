"""What the `remediate` commands share: exit codes, the playbook folder, and how a missing folder reads.

0 fine; 1 something was found (a rejected event, an invalid playbook, a broken audit chain); 2 a
usage or settings error; 3 storage could not be reached or refused us (commands that read storage).
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def playbooks_dir(given: Path | None) -> Path:
    """The folder given on the command line, else REMEDIATION_PLAYBOOKS_DIR, else the shipped `playbooks/`.

    Read through `remediation.settings` like every other setting; SettingsError when the
    environment holds a malformed setting.
    """
    if given is not None:
        return given
    from remediation.settings import Settings

    return Settings.from_env(require_storage=False).playbooks_dir


def not_a_folder(command: str, directory: Path) -> str:
    """The one way a command reports a folder argument that is missing or not a folder."""
    return f"remediate {command}: {directory} is not a folder"
