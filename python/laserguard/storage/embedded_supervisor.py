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
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from laserguard.storage.embedded_server import EmbeddedMongo, EmbeddedMongoError, _pid_alive

LEASES_DIR = "leases"
LOCK_FILE = ".lock"
POLL_S = 0.2
# The server stops this long after its last lease is gone (a restarting tool can re-attach).
IDLE_GRACE_S = 0.5


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def live_leases(data_dir: Path) -> list[int]:
    """Pids holding a lease; leases of dead processes (killed tools) are removed."""
    directory = data_dir / LEASES_DIR
    live = []
    for lease in directory.glob("*") if directory.is_dir() else []:
        try:
            pid = int(lease.name)
        except ValueError:
            continue
        if _pid_alive(pid):
            live.append(pid)
        else:
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
            # Still under the lock: no tool can attach between this decision and server.json going.
            with contextlib.suppress(OSError):
                server.state_path.unlink()
            break
    server.stop()
    with contextlib.suppress(OSError):
        server.state_path.unlink()
    print("laserguard embedded supervisor: no tool left, server stopped", file=sys.stderr, flush=True)
    return status


def _attach(data_dir: Path) -> str | None:
    probe = EmbeddedMongo(data_dir)
    if probe._try_attach():
        return probe.uri
    return None


@contextlib.contextmanager
def shared_embedded_server(
    data_dir: Path, *, replica_set: bool = False, startup_timeout_s: float = 60.0
) -> Iterator[str]:
    """Hold a lease on the data directory's embedded server (starting its supervisor if needed)
    and yield its URI. Leaving releases the lease; the last one out waits until the server stopped."""
    lease = data_dir / LEASES_DIR / str(os.getpid())
    with data_dir_lock(data_dir):
        lease.parent.mkdir(parents=True, exist_ok=True)
        lease.touch()
        uri = _attach(data_dir)
        if uri is None:
            uri = _start_supervisor(data_dir, replica_set, startup_timeout_s)
    try:
        yield uri
    finally:
        with data_dir_lock(data_dir):
            with contextlib.suppress(OSError):
                lease.unlink()
            last = not live_leases(data_dir)
        if last:  # keep "the tool stops its embedded server on exit" for the usual single tool
            deadline = time.monotonic() + IDLE_GRACE_S + 20.0
            while (data_dir / EmbeddedMongo.STATE_FILE).exists() and time.monotonic() < deadline:
                time.sleep(POLL_S)


def _start_supervisor(data_dir: Path, replica_set: bool, startup_timeout_s: float) -> str:
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
        uri = _attach(data_dir)
        if uri is not None:
            return uri
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
