"""Hand-over of the embedded server between tools run one after the other (issue 19).

``secantusd-py`` takes about 2 s after SIGTERM to release its files, and a second server started
on them before then fails ("WiredTiger database is already being managed by another process").
Real processes throughout: tools are Python processes holding a lease, the server is secantusd-py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from laserguard.storage.embedded_server import (
    EmbeddedMongo,
    EmbeddedMongoError,
    _pid_alive,
    data_dir_holder,
    ping,
)
from laserguard.storage.embedded_supervisor import shared_embedded_server
from mongo_fixtures import require_server_executable
from service_support import wait_for

# A tool: holds a lease on DATA_DIR's embedded server, writes one document, prints the server's
# PID and URI, then waits for a line on stdin (or EOF) and leaves the usual way.
TOOL = """
import json, sys
from pathlib import Path
import pymongo
from laserguard.storage.embedded_supervisor import shared_embedded_server
data_dir = Path(sys.argv[1])
with shared_embedded_server(data_dir) as uri:
    client = pymongo.MongoClient(uri)
    client["handover"]["docs"].insert_one({"_id": sys.argv[2]})
    client.close()
    state = json.loads((data_dir / "server.json").read_text())
    print(state["pid"], uri, flush=True)
    sys.stdin.readline()
"""


def start_tool(data_dir: Path, doc_id: str) -> tuple[subprocess.Popen[str], int, str]:
    tool = subprocess.Popen(
        [sys.executable, "-c", TOOL, str(data_dir), doc_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert tool.stdout is not None
    line = tool.stdout.readline()
    assert line, f"the tool did not start (exit status {tool.wait(30)})"
    pid, uri = line.split()
    return tool, int(pid), uri


def stored_ids(uri: str) -> set[str]:
    import pymongo

    client: Any = pymongo.MongoClient(uri)
    try:
        return {doc["_id"] for doc in client["handover"]["docs"].find()}
    finally:
        client.close()


def storage(data_dir: Path) -> Path:
    return EmbeddedMongo(data_dir).storage_path


def test_the_last_tool_out_leaves_only_once_its_server_released_the_files(tmp_path: Path) -> None:
    require_server_executable()
    for run in range(3):
        tool, server_pid, _ = start_tool(tmp_path, f"run{run}")
        assert data_dir_holder(storage(tmp_path)) == server_pid  # the server holds WiredTiger's lock
        tool.communicate("\n", timeout=60)
        assert tool.returncode == 0
        # The moment the tool has exited, the next one can start its own server on the files.
        assert not _pid_alive(server_pid)
        assert data_dir_holder(storage(tmp_path)) is None
        assert not (tmp_path / "server.json").exists()
    with shared_embedded_server(tmp_path) as uri:
        assert stored_ids(uri) == {"run0", "run1", "run2"}


def test_a_tool_starting_while_the_previous_server_shuts_down_waits_for_it(tmp_path: Path) -> None:
    require_server_executable()
    tool, old_pid, _ = start_tool(tmp_path, "before")
    tool.kill()  # leaves without its exit wait: its server is stopped by the supervisor alone
    tool.wait()

    def stopping() -> bool:
        try:
            return bool(json.loads((tmp_path / "server.json").read_text())["state"] == "stopping")
        except (OSError, ValueError):
            return False

    wait_for(stopping, 30, "the supervisor deciding to stop the server")
    assert data_dir_holder(storage(tmp_path)) == old_pid  # still shutting down on the files
    with shared_embedded_server(tmp_path) as uri:
        assert not _pid_alive(old_pid)
        state = json.loads((tmp_path / "server.json").read_text())
        assert state["pid"] != old_pid and state["state"] == "serving"
        assert stored_ids(uri) == {"before"}  # the same files, nothing lost


def test_a_tool_starting_while_the_previous_server_still_serves_attaches_to_it(tmp_path: Path) -> None:
    require_server_executable()
    first, server_pid, first_uri = start_tool(tmp_path, "first")
    with shared_embedded_server(tmp_path) as uri:
        assert uri == first_uri
        first.communicate("\n", timeout=60)  # hands the server over: it keeps serving us
        assert first.returncode == 0
        assert ping(uri) and _pid_alive(server_pid)
        assert stored_ids(uri) == {"first"}
    assert not _pid_alive(server_pid)
    assert data_dir_holder(storage(tmp_path)) is None


# Holds the byte WiredTiger locks in DATA_DIR/db/WiredTiger.lock, as a server that never exits would.
HOLDER = """
import fcntl, os, sys, time
path = os.path.join(sys.argv[1], "WiredTiger.lock")
os.makedirs(sys.argv[1], exist_ok=True)
fd = os.open(path, os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
print("locked", flush=True)
time.sleep(600)
"""


def test_files_that_are_never_released_are_reported_with_the_data_dir_and_holder(tmp_path: Path) -> None:
    require_server_executable()
    data_dir = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(storage(data_dir))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert data_dir_holder(storage(data_dir)) == holder.pid
        with pytest.raises(EmbeddedMongoError) as shared_error:
            with shared_embedded_server(data_dir, handover_timeout_s=1.0):
                pass
        with pytest.raises(EmbeddedMongoError) as direct_error:
            EmbeddedMongo(data_dir, attach_existing=False, handover_timeout_s=1.0).start()
    finally:
        holder.kill()
        holder.wait()
    for error in (shared_error, direct_error):
        message = str(error.value)
        assert repr(str(data_dir)) in message and f"PID {holder.pid}" in message, message
        assert f"kill {holder.pid}" in message, message
    assert not list((data_dir / "leases").iterdir())  # the failed tool left no lease behind
    with shared_embedded_server(data_dir) as uri:  # once it goes, the files are usable
        assert ping(uri)
