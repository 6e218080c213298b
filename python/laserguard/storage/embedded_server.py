"""Run the embedded MongoDB-compatible server (`secantusd-py`) as a child process.

SecantusDB is GPL-2.0, so it stays an optional extra (``pip install 'laserguard[embedded]'``) and is
only ever run as a separate process: this module never imports it. The server listens on
127.0.0.1 on a free port and keeps its files in a data directory. A small ``server.json`` in that
directory lets a second tool (``laserguard exporter`` next to ``laserguard store``) attach to the
running server instead of starting a second one on the same files.

Hand-over (issue 19): ``secantusd-py`` needs about 2 s after SIGTERM to release its files (its
accept thread is joined with a 2 s timeout), and a second server started on the same files
before then fails with WiredTiger's "Device or resource busy". So a server that stops is first
marked ``stopping`` in ``server.json`` (nobody attaches to it any more), the file goes only once
the process has exited, and ``start()`` waits, bounded, until no process holds the files.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

SERVER_EXECUTABLE = "secantusd-py"
DEFAULT_CACHE_SIZE = "256M"  # the server's memory: see EmbeddedMongo
MONGO_URI_ENV = "LASERGUARD_MONGO_URI"
INSTALL_HINT = (
    "install it with `pip install 'laserguard[embedded]'` (PyPI package SecantusDB), "
    f"or use an existing MongoDB server with --mongo-uri mongodb://HOST:PORT (or set {MONGO_URI_ENV})"
)


# SIGTERM, then SIGKILL after this long: its SIGTERM handler sometimes hangs.
STOP_TIMEOUT_S = 15.0
# A previous server is gone within STOP_TIMEOUT_S of its stop; a starting tool waits at most this.
HANDOVER_TIMEOUT_S = 30.0
LOCK_FILE = ".lock"
# WiredTiger's lock on the files: a POSIX record lock on byte 0 of this file in the storage path.
WIREDTIGER_LOCK = "WiredTiger.lock"


class EmbeddedMongoError(RuntimeError):
    """The embedded server is missing, did not start, or did not answer ``ping``."""


def default_data_dir() -> Path:
    """Where the embedded server keeps its files unless --data-dir says otherwise."""
    import platformdirs

    return Path(platformdirs.user_data_dir("laserguard", appauthor=False)) / "mongodb"


def find_server_executable() -> str:
    """Path of ``secantusd-py``: on PATH, or next to this interpreter (an unactivated venv)."""
    found = shutil.which(SERVER_EXECUTABLE)
    if found:
        return found
    beside = Path(sys.executable).parent / SERVER_EXECUTABLE
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise EmbeddedMongoError(
        f"the embedded MongoDB server {SERVER_EXECUTABLE!r} was not found: {INSTALL_HINT}"
    )


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def mongo_uri(host: str, port: int) -> str:
    # directConnection: the server advertises a one-node replica set; talk to it directly.
    return f"mongodb://{host}:{port}/?directConnection=true"


def ping(uri: str, timeout_s: float = 1.0) -> bool:
    """True if the server at ``uri`` answers ``ping`` within ``timeout_s``."""
    import pymongo
    import pymongo.errors

    timeout_ms = max(1, int(timeout_s * 1000))
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        client.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False
    finally:
        client.close()


def _stop_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGKILL the server when its parent dies, so a tool killed
    without running its cleanup (SIGKILL, an unhandled SIGTERM) leaves no server behind.
    SIGKILL, not SIGTERM: nobody is left to follow up if secantusd-py's SIGTERM handler hangs
    (seen in 2 of 5 runs), and every write is journaled (j=True), so a kill loses nothing acknowledged.
    prctl is looked up here, in the parent: the hook itself must not import or allocate much."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigkill = 1, int(signal.SIGKILL)

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, sigkill)

    return set_parent_death_signal


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) has released everything: False."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) is all we know
    return state not in ("Z", "X")


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``DATA_DIR/.lock``: start, attach, the decision to stop and removing
    ``server.json`` happen under it, so no tool sees a half-made decision."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
_FLOCK = "hhqqi4x"


def data_dir_holder(storage_path: Path) -> int | None:
    """PID of the process holding WiredTiger's lock on ``storage_path`` (a server running or
    still shutting down on those files), or None if they are free.

    This is the very check a second server trips over ("WiredTiger database is already being
    managed by another process"); F_GETLK asks the kernel who holds it without taking it."""
    if not sys.platform.startswith("linux"):
        return None  # the struct layout above is Linux's; elsewhere we rely on server.json alone
    try:
        fd = os.open(storage_path / WIREDTIGER_LOCK, os.O_RDONLY)
    except OSError:
        return None  # no files yet: nothing to wait for
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
        lock_type, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    finally:
        os.close(fd)
    return None if lock_type == fcntl.F_UNLCK else pid


def _describe_process(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"PID {pid}"
    return f"PID {pid} ({command.strip()[:200]})"


def wait_until_released(data_dir: Path, storage_path: Path, timeout_s: float) -> float:
    """Wait until no process holds the server files (a previous server still shutting down);
    return the seconds waited. After ``timeout_s`` raise, naming the data dir and the holder."""
    started = time.monotonic()
    holder = data_dir_holder(storage_path)
    while holder is not None:
        if time.monotonic() - started >= timeout_s:
            raise EmbeddedMongoError(
                f"the embedded server's data dir {str(data_dir)!r} is still held by "
                f"{_describe_process(holder)} after waiting {timeout_s:.0f} s for it to shut down; "
                f"stop that process (kill {holder}) or use another --data-dir"
            )
        time.sleep(0.05)
        holder = data_dir_holder(storage_path)
    return time.monotonic() - started


class EmbeddedMongo:
    """A ``secantusd-py`` child process bound to 127.0.0.1; a context manager.

    ``start()`` attaches to a live server already running on the same data directory (recorded
    in ``server.json``) and then leaves it running on ``stop()``; otherwise it starts one and
    ``stop()`` ends it (SIGTERM, then SIGKILL after ``stop_timeout_s``) and returns once the
    process has exited. A server that is still shutting down on the same files (another
    process's) is waited for, at most ``handover_timeout_s``. A stopped server can be started
    again on the same port and files.

    By default the server runs ``--standalone``: it then keeps no oplog, and journaled inserts run
    1.5-2.4x faster (measured: 13.5-14.9k vs 6.0-9.1k docs/s). ``replica_set=True`` keeps the
    one-node replica set that change streams and transactions need.

    ``cache_size`` caps the server's WiredTiger cache (its own default is 1G). Measured inserting
    500,000 frame documents (AMD EPYC Zen 4): RSS 876 MB with 1G and still rising, 318 MB with
    256M, 207 MB with 128M; inserts 26 s, 33 s, 34 s. It does not bound the server's own heap,
    which holds each query's whole result: the soak grew it to 1.5 GB through its TTL monitor and
    one large read per minute, until retention and the rollup stopped asking for either
    (docs/storage.md, "Queries on the embedded server").
    """

    STATE_FILE = "server.json"

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        attach_existing: bool = True,
        replica_set: bool = False,
        handover_timeout_s: float = HANDOVER_TIMEOUT_S,
        cache_size: str = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.attach_existing = attach_existing
        self.replica_set = replica_set
        self.handover_timeout_s = handover_timeout_s
        self.cache_size = cache_size
        self._process: subprocess.Popen[bytes] | None = None
        self._attached = False
        self.attached_pid: int | None = None  # the server process this object attached to

    @property
    def storage_path(self) -> Path:
        return self.data_dir / "db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "secantusd.log"

    @property
    def state_path(self) -> Path:
        return self.data_dir / self.STATE_FILE

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedMongoError("the embedded server has not been started, so it has no URI yet")
        return mongo_uri(self.host, self.port)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def owns_process(self) -> bool:
        return self._process is not None

    def is_running(self) -> bool:
        return self._attached or (self._process is not None and self._process.poll() is None)

    def _read_state(self) -> dict[str, object] | None:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def _write_state(self, state: str) -> None:
        assert self._process is not None
        record = {"pid": self._process.pid, "port": self.port, "host": self.host, "state": state}
        # Atomic: a tool reading it at the same moment sees the old or the new record, never half.
        partial = self.state_path.with_name(f"{self.STATE_FILE}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(record))
        os.replace(partial, self.state_path)

    def _try_attach(self) -> bool:
        state = self._read_state()
        try:
            assert state is not None
            pid, port = int(str(state["pid"])), int(str(state["port"]))
        except (AssertionError, KeyError, ValueError):
            return False
        if state.get("state") == "stopping":
            return False  # shutting down: wait for it to go (wait_until_released), then start anew
        if not _pid_alive(pid) or not ping(mongo_uri(self.host, port), timeout_s=2.0):
            return False
        self.port = port
        self._attached = True
        self.attached_pid = pid
        return True

    def start(self) -> EmbeddedMongo:
        if self.is_running():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.attach_existing and self._try_attach():
            return self
        executable = find_server_executable()
        wait_until_released(self.data_dir, self.storage_path, self.handover_timeout_s)
        if self.port is None:
            self.port = free_tcp_port(self.host)
        command = [
            executable,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--storage-path",
            str(self.storage_path),
            "--log-level",
            "WARNING",
            "--cache-size",
            self.cache_size,
        ]
        if not self.replica_set:
            command.append("--standalone")
        with open(self.log_path, "ab") as log:
            # Own process group: a Ctrl-C in the terminal reaches us, and we stop the server in order.
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_stop_with_parent(),
            )
        self._wait_for_ping()
        self._write_state("serving")
        return self

    def mark_stopping(self) -> None:
        """Record in ``server.json`` that this server is about to stop: no tool attaches to it
        any more, and a tool that starts meanwhile waits for it to release the files."""
        if self._process is not None:
            self._write_state("stopping")

    def _log_tail(self, max_chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-max_chars:]
        except OSError:
            return ""

    def _wait_for_ping(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            status = self._process.poll()
            if status is not None:
                self._process = None
                raise EmbeddedMongoError(
                    f"{SERVER_EXECUTABLE} exited with status {status} while starting on port {self.port} "
                    f"(data dir {str(self.data_dir)!r}); its log ends with:\n{self._log_tail()}"
                )
            if ping(self.uri, timeout_s=0.5):
                return
            time.sleep(0.1)
        self._terminate()
        raise EmbeddedMongoError(
            f"{SERVER_EXECUTABLE} did not answer ping on {self.uri} within {self.startup_timeout_s:.0f} s "
            f"(data dir {str(self.data_dir)!r}); its log ends with:\n{self._log_tail()}"
        )

    def _terminate(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def stop(self) -> None:
        """Stop the server if this object started it (returns once the process has exited and
        so released its files); detach if it only attached."""
        if self._attached:
            self._attached = False
            self.attached_pid = None
            return
        if self._process is None:
            return
        pid = self._process.pid
        self._terminate()
        # Only our own record: a tool may already have started the next server and written its own.
        with data_dir_lock(self.data_dir):
            state = self._read_state()
            if state is not None and state.get("pid") == pid:
                with contextlib.suppress(OSError):
                    self.state_path.unlink()

    def kill(self) -> None:
        """SIGKILL the server (crash simulation for tests); ``start()`` brings it back."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def __enter__(self) -> EmbeddedMongo:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def mongo_server(
    mongo_uri_option: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    replica_set: bool = False,
) -> Iterator[str]:
    """Yield the MongoDB URI every tool uses.

    An explicit URI (``--mongo-uri``, else ``LASERGUARD_MONGO_URI``) is used as given, so auth and
    TLS come through the URI; without one the block holds a lease on the data directory's embedded
    server, started by a supervisor if none runs (``embedded_supervisor``): it stops when the
    last tool using it has gone, never while another one still writes.
    """
    uri = mongo_uri_option or os.environ.get(MONGO_URI_ENV)
    if uri:
        yield uri
        return
    # Shared through a supervisor and leases: no tool stops a server another tool still uses.
    from laserguard.storage.embedded_supervisor import shared_embedded_server

    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    with shared_embedded_server(directory, replica_set=replica_set) as shared_uri:
        yield shared_uri
