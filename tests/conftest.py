"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azurite import Azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite for the whole session; tests isolate themselves by unique keys/names."""
    with Azurite() as emulator:
        yield emulator


@pytest.fixture
def storage_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string
