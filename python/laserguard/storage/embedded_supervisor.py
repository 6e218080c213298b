"""One owner for the embedded server shared by several tools (issue 12: start order, ownership).

``store``, ``exporter``, ``dashboard`` and ``demo`` started without ``--mongo-uri`` all use the
embedded server on one data directory. Whichever tool comes first must not own it: if the
exporter started it and the store attached, stopping the exporter must leave the store writing.
So no tool owns it. The first tool spawns this supervisor, a small detached process that runs
``secantusd-py`` as its child (with a parent-death signal, so the server never outlives it), and
every tool holds a *lease*: a file ``leases/<pid>`` in the data directory. The supervisor stops
the server once no lease belongs to a live process, so the last tool out (even one killed with
SIGKILL) leaves no server behind, and no tool ever stops a server another one is using.

Start, attach and the supervisor's decision to stop all happen under an ``flock`` on
``DATA_DIR/.lock``, so a tool attaching at the moment the last one leaves is never stranded.

Hand-over between tools run one after the other (issue 19): the last tool out does not exit
before the server has exited and so released its files (or another tool took a lease on it),
and a tool that starts while a previous server is still shutting down waits for it, bounded
(``HANDOVER_TIMEOUT_S``), instead of starting a second server that WiredTiger refuses.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from laserguard.storage.embedded_server import (
    HANDOVER_TIMEOUT_S,
    STOP_TIMEOUT_S,
    EmbeddedMongo,
    EmbeddedMongoError,
    _pid_alive,
    data_dir_lock,
    wait_until_released,
)

LEASES_DIR = "leases"
POLL_S = 0.2
# The server stops this long after its last lease is gone (a restarting tool can re-attach).
IDLE_GRACE_S = 0.5
# How long the last tool out waits for the server to exit: the supervisor's decision, then
# SIGTERM and at most the server's stop_timeout_s before SIGKILL, and a margin.
LEAVE_TIMEOUT_S = IDLE_GRACE_S + POLL_S + STOP_TIMEOUT_S + 5.0


@dataclass(frozen=True)
class SharedServer:
    uri: str
    pid: int  # the secantusd-py process


def live_leases(data_dir: Path, *, remove_dead: bool = True) -> list[int]:
    """Pids holding a lease; leases of dead processes (killed tools) are removed (under the lock)."""
    directory = data_dir / LEASES_DIR
    live = []
    for lease in directory.glob("*") if directory.is_dir() else []:
        try:
            pid = int(lease.name)
        except ValueError:
            continue
        if _pid_alive(pid):
            live.append(pid)
        elif remove_dead:
            with contextlib.suppress(OSError):
                lease.unlink()
    return live


def supervise(data_dir: Path, replica_set: bool) -> int:
    """Run the server until no live lease remains (or it dies); the supervisor process's body."""
    server = EmbeddedMongo(data_dir, attach_existing=False, replica_set=replica_set)
    try:
        server.start()
    except EmbeddedMongoError as exc:
        print(f"laserguard embedded supervisor: {exc}", file=sys.stderr, flush=True)
        return 1
    print(
        f"laserguard embedded supervisor: secantusd-py pid {server.pid} on {server.uri}",
        file=sys.stderr,
        flush=True,
    )
    idle_since: float | None = None
    status = 0
    while True:
        time.sleep(POLL_S)
        if not server.is_running():
            print(
                "laserguard embedded supervisor: secantusd-py exited on its own", file=sys.stderr, flush=True
            )
            status = 1
            break
        with data_dir_lock(data_dir):
            if live_leases(data_dir):
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since < IDLE_GRACE_S:
                continue
            # Still under the lock: from here on no tool attaches; one that starts waits for the files.
            server.mark_stopping()
            break
    stopping = time.monotonic()
    server.stop()  # returns once secantusd-py has exited; server.json goes only then
    print(
        f"laserguard embedded supervisor: no tool left, server stopped "
        f"({time.monotonic() - stopping:.2f} s from SIGTERM to exit)",
        file=sys.stderr,
        flush=True,
    )
    return status


def _attach(data_dir: Path) -> SharedServer | None:
    probe = EmbeddedMongo(data_dir)
    if probe._try_attach():
        assert probe.attached_pid is not None
        return SharedServer(probe.uri, probe.attached_pid)
    return None


@contextlib.contextmanager
def shared_embedded_server(
    data_dir: Path,
    *,
    replica_set: bool = False,
    startup_timeout_s: float = 60.0,
    handover_timeout_s: float = HANDOVER_TIMEOUT_S,
) -> Iterator[str]:
    """Hold a lease on the data directory's embedded server (starting its supervisor if needed)
    and yield its URI. A previous server still shutting down on these files is waited for (at
    most ``handover_timeout_s``). Leaving releases the lease; the last one out returns once the
    server has exited (or another tool holds a lease on it)."""
    lease = data_dir / LEASES_DIR / str(os.getpid())
    with data_dir_lock(data_dir):
        lease.parent.mkdir(parents=True, exist_ok=True)
        lease.touch()
        try:
            server = _attach(data_dir)
            if server is None:
                storage = EmbeddedMongo(data_dir).storage_path
                wait_until_released(data_dir, storage, handover_timeout_s)
                server = _start_supervisor(data_dir, replica_set, startup_timeout_s)
        except BaseException:
            with contextlib.suppress(OSError):
                lease.unlink()
            raise
    try:
        yield server.uri
    finally:
        with data_dir_lock(data_dir):
            with contextlib.suppress(OSError):
                lease.unlink()
            last = not live_leases(data_dir)
        if last:
            wait_for_server_exit(data_dir, server.pid, LEAVE_TIMEOUT_S)


def wait_for_server_exit(data_dir: Path, server_pid: int, timeout_s: float) -> bool:
    """The last tool out: wait until the server has exited (its files are free for the next
    tool) or another tool took a lease (it is handed over). False, with a note, on time-out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # Without the lock: a tool starting a server holds it for seconds; reading leases is safe.
        if not _pid_alive(server_pid) or live_leases(data_dir, remove_dead=False):
            return True
        time.sleep(0.05)
    print(
        f"laserguard: the embedded server (PID {server_pid}) still runs on {str(data_dir)!r} "
        f"{timeout_s:.0f} s after the last tool left; the next tool waits for it",
        file=sys.stderr,
        flush=True,
    )
    return False


def _start_supervisor(data_dir: Path, replica_set: bool, startup_timeout_s: float) -> SharedServer:
    from laserguard.storage.embedded_server import find_server_executable

    find_server_executable()  # fail here, with the install hint, not in the detached process
    state = data_dir / EmbeddedMongo.STATE_FILE
    with contextlib.suppress(OSError):
        state.unlink()  # a stale file of a dead server
    command = [sys.executable, "-m", "laserguard.storage.embedded_supervisor", str(data_dir)]
    if replica_set:
        command.append("--replica-set")
    with open(data_dir / "supervisor.log", "ab") as log:
        # Its own session and no parent-death signal: it must outlive the tool that started it.
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        server = _attach(data_dir)
        if server is not None:
            return server
        if process.poll() is not None:
            tail = (data_dir / "supervisor.log").read_text(errors="replace")[-2000:]
            raise EmbeddedMongoError(
                f"the embedded server did not start (data dir {str(data_dir)!r}):\n{tail}"
            )
        time.sleep(0.1)
    raise EmbeddedMongoError(
        f"the embedded server did not answer within {startup_timeout_s:.0f} s (data dir {str(data_dir)!r})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the shared embedded MongoDB server of one data dir")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--replica-set", action="store_true")
    args = parser.parse_args(argv)
    return supervise(args.data_dir, args.replica_set)


if __name__ == "__main__":
    sys.exit(main())
