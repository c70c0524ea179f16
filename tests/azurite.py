"""Azurite, the Azure Storage emulator, as a subprocess on loopback for tests.

`tests/conftest.py` starts one in-memory instance per session; a test that stops and restarts the
emulator and expects its data to survive builds its own with `location=` a directory. With `tls=`
(a certificate and key, e.g. from trustme) it serves HTTPS, and with `oauth=True` also takes bearer
tokens (`--oauth basic`: the token's audience, issuer and lifetime are checked, not its signature).
The executable is the repo's pinned `node_modules/.bin/azurite` (see package.json and
/work/shared/TOOLCHAIN.md for why each flag is there).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: all sockets are held open until every port is picked."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Azurite:
    """One Azurite process serving blob, queue and table on three fixed loopback ports."""

    def __init__(
        self, *, location: Path | None = None, tls: tuple[Path, Path] | None = None, oauth: bool = False
    ) -> None:
        if oauth and tls is None:
            raise ValueError("Azurite takes OAuth only over HTTPS: pass tls=(cert, key)")
        self.location = location
        self.tls = tls  # (certificate PEM, private key PEM)
        self.oauth = oauth
        self.blob_port, self.queue_port, self.table_port = free_ports(3)
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def ports(self) -> tuple[int, int, int]:
        return self.blob_port, self.queue_port, self.table_port

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    def endpoint(self, service: str) -> str:
        """The account's `service` ("blob", "queue", "table") endpoint, path-style."""
        port = {"blob": self.blob_port, "queue": self.queue_port, "table": self.table_port}[service]
        return f"{self.scheme}://127.0.0.1:{port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        base = f"{self.scheme}://127.0.0.1:{{port}}/{ACCOUNT_NAME}"
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base.format(port=self.blob_port)};"
            f"QueueEndpoint={base.format(port=self.queue_port)};"
            f"TableEndpoint={base.format(port=self.table_port)};"
        )

    def command(self) -> list[str]:
        storage = ["--inMemoryPersistence"] if self.location is None else ["--location", str(self.location)]
        if self.tls is not None:
            storage += ["--cert", str(self.tls[0]), "--key", str(self.tls[1])]
        if self.oauth:
            storage += ["--oauth", "basic"]
        return [
            str(AZURITE_BIN),
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--blobHost", "127.0.0.1",
            "--queueHost", "127.0.0.1",
            "--tableHost", "127.0.0.1",
            "--blobPort", str(self.blob_port),
            "--queuePort", str(self.queue_port),
            "--tablePort", str(self.table_port),
            *storage,
        ]  # fmt: skip

    def start(self) -> None:
        """Start the process and wait until all three ports accept connections."""
        if self._process is not None:
            raise RuntimeError("Azurite is already running")
        if not AZURITE_BIN.exists():
            raise RuntimeError(f"{AZURITE_BIN} is missing: run `npm ci` in {REPO_ROOT}")
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - open while the process runs
        self._process = subprocess.Popen(
            self.command(),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        pending = set(self.ports)
        while pending:
            if self._process.poll() is not None:
                raise RuntimeError(f"Azurite exited with {self._process.returncode}: {self.stderr_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Azurite not ready in {START_TIMEOUT}s on {sorted(pending)}: {self.stderr_text()}")
            pending = {port for port in pending if not _accepts(port)}
            if pending:
                time.sleep(0.05)

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip() or "(no stderr)"

    def stop(self) -> None:
        """Terminate the process (kill it if it does not exit in time); a no-op when not running."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def restart(self) -> None:
        """Stop and start again on the same ports; data survives only with `location`."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
