"""The host's own configuration: where a new Event Hub consumer group starts, and `make run` on a
machine without Functions Core Tools.

`make run` runs on a copy of the Makefile and its inputs in a temporary folder, with a PATH holding
only what make and its shell need, so that nothing is built in the repo and `func` is surely absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
OFFSET_SETTING = "AzureFunctionsJobHost__extensions__eventHubs__initialOffsetOptions__"
MAKE_INPUTS = (
    "Makefile",
    "requirements.txt",
    "requirements-dev.txt",
    "pyproject.toml",
    "package.json",
    "package-lock.json",
    "local.settings.example.json",
)
INSTALL_HINT = "npm install -g azure-functions-core-tools@4"


def test_a_new_consumer_group_starts_with_new_alerts() -> None:
    host = json.loads((REPO_ROOT / "host.json").read_text())
    # Existing checkpoints always win; this applies only where there is none. A backfill is a
    # deliberate override by app settings, never a date frozen in the repo.
    assert host["extensions"]["eventHubs"]["initialOffsetOptions"] == {"type": "fromEnd"}


def test_the_readme_says_how_to_backfill() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"{OFFSET_SETTING}type" in readme and f"{OFFSET_SETTING}enqueuedTimeUtc" in readme


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH folder with make, bash, sh and env only: no func, python, node or npm."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("make", "bash", "sh", "env"):
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (folder / tool).symlink_to(found)
    return folder


def test_make_run_without_func_stops_before_building_anything(tmp_path: Path, bare_path: Path) -> None:
    work = tmp_path / "checkout"
    work.mkdir()
    for name in MAKE_INPUTS:
        shutil.copy(REPO_ROOT / name, work / name)
    env = {"PATH": str(bare_path), "HOME": str(tmp_path)}
    started = time.monotonic()
    done = subprocess.run(
        [str(bare_path / "make"), "run"], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and time.monotonic() - started < 10
    assert INSTALL_HINT in done.stderr, done.stdout + done.stderr
    assert "Python 3.11 is required" not in done.stdout + done.stderr
    assert sorted(path.name for path in work.iterdir()) == sorted(MAKE_INPUTS)
