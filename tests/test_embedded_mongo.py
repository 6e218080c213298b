"""The embedded secantusd-py server: start, ping, restart on the same files, attach, stop, errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from laserguard.storage import embedded_server as embedded_mongo
from laserguard.storage.database_options import redacted_uri
from laserguard.storage.embedded_server import EmbeddedMongo, EmbeddedMongoError, mongo_server, ping
from mongo_fixtures import require_server_executable


def test_starts_on_loopback_keeps_data_across_restart_and_stops(tmp_path: Path) -> None:
    import pymongo
    from pymongo.write_concern import WriteConcern

    require_server_executable()
    server = EmbeddedMongo(tmp_path / "data", attach_existing=False)
    with server:
        assert server.uri.startswith("mongodb://127.0.0.1:")
        assert ping(server.uri)
        assert server.storage_path.is_dir()
        pid = server.pid
        assert pid is not None
        client: Any = pymongo.MongoClient(server.uri)
        client["t"].get_collection("c", write_concern=WriteConcern(w=1, j=True)).insert_one({"_id": "kept"})
        client.close()
        port = server.port
        server.stop()
        assert not ping(server.uri, timeout_s=0.3)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not server.state_path.exists()
        server.start()  # same port, same files
        assert server.port == port
        client = pymongo.MongoClient(server.uri)
        assert client["t"]["c"].find_one({"_id": "kept"}) == {"_id": "kept"}
        client.close()
    assert not server.is_running()
    assert not ping(server.uri, timeout_s=0.3)


def test_second_tool_attaches_to_the_running_server_and_leaves_it_running(tmp_path: Path) -> None:
    require_server_executable()
    with EmbeddedMongo(tmp_path) as owner:
        with EmbeddedMongo(tmp_path) as second:
            assert second.uri == owner.uri
            assert not second.owns_process
        assert ping(owner.uri)  # the attached tool's exit did not stop the owner's server


def test_mongo_server_context_starts_and_stops_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_server_executable()
    monkeypatch.delenv(embedded_mongo.MONGO_URI_ENV, raising=False)
    with mongo_server(None, tmp_path) as uri:
        assert ping(uri)
    assert not ping(uri, timeout_s=0.3)


def test_explicit_uri_or_environment_is_used_without_starting_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no secantusd-py reachable: nothing may be started
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with mongo_server("mongodb://db.example:27017/?tls=true", tmp_path) as uri:
        assert uri == "mongodb://db.example:27017/?tls=true"
    monkeypatch.setenv(embedded_mongo.MONGO_URI_ENV, "mongodb://from-env:27017")
    with mongo_server(None, tmp_path) as uri:
        assert uri == "mongodb://from-env:27017"
    assert not (tmp_path / "db").exists()


def test_missing_server_says_what_to_install_or_which_flag_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.delenv(embedded_mongo.MONGO_URI_ENV, raising=False)
    with pytest.raises(EmbeddedMongoError) as excinfo:
        with mongo_server(None, tmp_path):
            pass
    message = str(excinfo.value)
    assert "'secantusd-py'" in message
    assert "pip install 'laserguard[embedded]'" in message
    assert "--mongo-uri" in message and "LASERGUARD_MONGO_URI" in message


def test_a_server_that_cannot_start_is_reported_with_its_port(tmp_path: Path) -> None:
    require_server_executable()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = EmbeddedMongo(tmp_path, port=port, attach_existing=False, startup_timeout_s=10)
        with pytest.raises(EmbeddedMongoError, match=str(port)):
            server.start()
    assert not server.is_running()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited and only waits to be reaped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_server_stops_when_its_owner_is_killed_without_cleanup(tmp_path: Path) -> None:
    require_server_executable()
    script = (
        "import sys, time\n"
        "from laserguard.storage.embedded_server import EmbeddedMongo\n"
        "server = EmbeddedMongo(sys.argv[1], attach_existing=False).start()\n"
        "print(server.pid, server.uri, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pid_text, uri = owner.stdout.readline().split()
    pid = int(pid_text)
    assert ping(uri) and _running(pid)
    owner.kill()  # SIGKILL: no cleanup code runs in the owner
    owner.wait()
    deadline = time.monotonic() + 30
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), f"secantusd-py (pid {pid}) outlived its killed owner"


def test_standalone_by_default_and_replica_set_on_request(tmp_path: Path) -> None:
    import pymongo

    require_server_executable()
    for replica_set in (False, True):
        with EmbeddedMongo(
            tmp_path / str(replica_set), attach_existing=False, replica_set=replica_set
        ) as server:
            client: Any = pymongo.MongoClient(server.uri)
            hello = client.admin.command("hello")
            client.close()
            assert ("setName" in hello) is replica_set, hello


def test_logged_uris_hide_the_password() -> None:
    assert (
        redacted_uri("mongodb://ops:s3cret@db1:27017,db2/?tls=true")
        == "mongodb://ops:***@db1:27017,db2/?tls=true"
    )
    assert redacted_uri("mongodb://127.0.0.1:27017/") == "mongodb://127.0.0.1:27017/"
    assert redacted_uri("mongodb+srv://user@cluster/") == "mongodb+srv://user@cluster/"


def test_the_servers_cache_is_capped(tmp_path: Path) -> None:
    # Uncapped, the server's memory grows to its 1G default cache and past it (issue 17's soak).
    require_server_executable()
    for size in (embedded_mongo.DEFAULT_CACHE_SIZE, "64M"):
        with EmbeddedMongo(tmp_path / size, attach_existing=False, cache_size=size) as server:
            argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
            assert argv[argv.index(b"--cache-size") + 1] == size.encode()
    assert embedded_mongo.DEFAULT_CACHE_SIZE == "256M"
