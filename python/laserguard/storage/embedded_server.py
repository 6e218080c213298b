"""Run the embedded MongoDB-compatible server (`secantusd-py`) as a child process.

SecantusDB is GPL-2.0, so it stays an optional extra (``pip install 'laserguard[embedded]'``) and is
only ever run as a separate process: this module never imports it. The server listens on
127.0.0.1 on a free port and keeps its files in a data directory. A small ``server.json`` in that
directory lets a second tool (``laserguard exporter`` next to ``laserguard store``) attach to the
running server instead of starting a second one on the same files.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

SERVER_EXECUTABLE = "secantusd-py"
MONGO_URI_ENV = "LASERGUARD_MONGO_URI"
INSTALL_HINT = (
    "install it with `pip install 'laserguard[embedded]'` (PyPI package SecantusDB), "
    f"or use an existing MongoDB server with --mongo-uri mongodb://HOST:PORT (or set {MONGO_URI_ENV})"
)


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedMongo:
    """A ``secantusd-py`` child process bound to 127.0.0.1; a context manager.

    ``start()`` attaches to a live server already running on the same data directory (recorded
    in ``server.json``) and then leaves it running on ``stop()``; otherwise it starts one and
    ``stop()`` ends it (SIGTERM, then SIGKILL after ``stop_timeout_s``). A stopped server can be
    started again on the same port and files.

    By default the server runs ``--standalone``: it then keeps no oplog, and journaled inserts run
    1.5-2.4x faster (measured: 13.5-14.9k vs 6.0-9.1k docs/s). ``replica_set=True`` keeps the
    one-node replica set that change streams and transactions need.
    """

    STATE_FILE = "server.json"

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 15.0,
        attach_existing: bool = True,
        replica_set: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.attach_existing = attach_existing
        self.replica_set = replica_set
        self._process: subprocess.Popen[bytes] | None = None
        self._attached = False

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

    def _try_attach(self) -> bool:
        try:
            state = json.loads(self.state_path.read_text())
            pid, port = int(state["pid"]), int(state["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if not _pid_alive(pid) or not ping(mongo_uri(self.host, port), timeout_s=2.0):
            return False
        self.port = port
        self._attached = True
        return True

    def start(self) -> EmbeddedMongo:
        if self.is_running():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.attach_existing and self._try_attach():
            return self
        executable = find_server_executable()
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
        self.state_path.write_text(
            json.dumps({"pid": self._process.pid, "port": self.port, "host": self.host})
        )
        return self

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
        """Stop the server if this object started it; detach if it only attached."""
        if self._attached:
            self._attached = False
            return
        if self._process is None:
            return
        self._terminate()
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
