"""Shared pytest fixtures: a real embedded MongoDB-wire server (secantusd-py) per test session.

Test modules import these fixtures by name. The tests skip only if SecantusDB is not installed
(CI installs it with the ``embedded`` extra).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from laserguard.storage.embedded_server import EmbeddedMongo, EmbeddedMongoError, find_server_executable
from laserguard.wire.codec import CHANNELS as CHANNELS  # re-exported: storage tests take the names from here


def require_server_executable() -> None:
    try:
        find_server_executable()
    except EmbeddedMongoError as exc:
        pytest.skip(f"SecantusDB is not installed (pip install '.[embedded]'): {exc}")


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    require_server_executable()
    with EmbeddedMongo(tmp_path_factory.mktemp("mongo"), attach_existing=False) as server:
        yield server


@pytest.fixture()
def mongo_client(mongo_server: EmbeddedMongo) -> Iterator[Any]:
    import pymongo

    client: Any = pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture()
def db(mongo_client: Any) -> Iterator[Any]:
    """A fresh database per test, dropped afterwards."""
    name = f"lgtest_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)
