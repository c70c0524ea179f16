"""checkov scans infra/ (Bicep): no check fails, every file parses, and every skip says why.

checkov lives in a virtualenv of its own, .venv/checkov, which `make test` builds from
requirements-checkov.txt (its pins clash with pytest's); $CHECKOV names another binary. It runs once
per session, offline (`--skip-download`), as
`checkov -d infra --framework bicep --skip-download -o json` without `--quiet`, so the report also
lists the skipped checks and their reasons. A file checkov cannot parse does not fail the run (exit
0): it is only counted in `summary.parsing_errors`, which must be zero. A deliberate skip is an
inline `// checkov:skip=CKV_AZURE_xx: reason` inside the resource; docs/deploy.md lists them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
CHECKOV_VENV = ROOT / ".venv" / "checkov" / "bin" / "checkov"


def _checkov() -> str:
    for candidate in (os.environ.get("CHECKOV"), str(CHECKOV_VENV), shutil.which("checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("checkov is not installed: `make test` installs it into .venv/checkov (requirements-checkov.txt)")


@pytest.fixture(scope="session")
def report() -> dict[str, Any]:
    command = [_checkov(), "-d", "infra", "--framework", "bicep", "--skip-download", "-o", "json"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    # 0: nothing failed, 1: a check failed; anything else is checkov itself failing.
    assert run.returncode in (0, 1), f"checkov exited {run.returncode}: {run.stderr[-3000:]}"
    data = json.loads(run.stdout)
    reports = data if isinstance(data, list) else [data]
    (bicep,) = [report for report in reports if report.get("check_type") == "bicep"]
    return bicep


def test_checkov_parses_every_bicep_file(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, f"files checkov cannot parse: {report['results'].get('parsing_errors')}"
    assert summary["resource_count"] > 0
    scanned = {
        result["file_path"].lstrip("/")
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for result in report["results"][kind]
    }
    # The files whose resources checkov has checks for (role assignments and Event Grid have none).
    for name in ("main.bicep", "modules/app.bicep"):
        assert name in scanned, f"checkov scanned nothing in infra/{name}"


def test_no_checkov_check_fails(report: dict[str, Any]) -> None:
    failed = [
        f"{result['check_id']} {result['check_name']}: {result['file_path']} {result['resource']}"
        for result in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov checks failing (fix, or skip inline with a reason):\n" + "\n".join(failed)
    assert report["summary"]["failed"] == 0


def test_every_skip_is_inline_with_a_reason(report: dict[str, Any]) -> None:
    texts = {path.relative_to(INFRA).as_posix(): path.read_text() for path in INFRA.rglob("*.bicep")}
    for result in report["results"]["skipped_checks"]:
        check_id = result["check_id"]
        reason = (result["check_result"].get("suppress_comment") or "").strip()
        where = f"{check_id} on {result['file_path']} {result['resource']}"
        assert len(reason) >= 20, f"{where}: say why it is skipped"
        # Inline in the Bicep, not a --skip-check on the command line or a config file.
        assert f"checkov:skip={check_id}:" in texts[result["file_path"].lstrip("/")], where
