"""CurveZMQ on the link's sockets, the Python side (docs/protocol.md §9).

Clients (detect, store, dashboard, roundtrip) set their key pair and the server's public key on
each socket (``secure_client``) and watch its handshakes (``HandshakeWatch``), so a wrong key or
a CURVE/plain mismatch ends in one clear message instead of a silent, endless reconnect.

Servers written in Python (detect's observer stream, replay as an LCC stand-in) make their
sockets CURVE servers (``secure_server``) and authorise clients with ``ZapAuthenticator``: the
same allow-list, roles and per-socket domains as ``lcc_link``'s C++ ``LinkGuard``.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.utils.z85
from zmq.utils.monitor import recv_monitor_message

from laserguard.wire.curve_keys import (
    ALLOW_DIR,
    SECRET_SUFFIX,
    AllowedKey,
    KeyPair,
    load_allow_list,
    read_key_pair,
    read_public_key,
)

log = logging.getLogger("laserguard.link_security")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # fixed by RFC 27
TELEMETRY_DOMAIN = b"laserguard.telemetry"
FEEDBACK_DOMAIN = b"laserguard.feedback"
OBSERVER_DOMAIN = b"laserguard.observer"
# Which roles each socket admits: only command keys may deliver feedback.
DOMAIN_ROLES = {
    TELEMETRY_DOMAIN: ("read", "command"),
    FEEDBACK_DOMAIN: ("command",),
    OBSERVER_DOMAIN: ("read", "command"),
}
HANDSHAKE_GRACE_S = 2.0  # a handshake failure not followed by a success within this is a config error
# A failure without detail can be a server killed mid-handshake; only repeated ones mean a wrong key.
REPEATED_FAILURES = 3
MAX_LOGGED_PEERS = 4096  # refused peers named in the log; a scan with random keys cannot grow it further

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for tcp endpoints on the loopback interface and for ipc/inproc."""
    if not endpoint.startswith("tcp://"):
        return True
    host = endpoint[len("tcp://") :].rsplit(":", 1)[0]
    return host in LOOPBACK_HOSTS or host.startswith("127.")


@dataclass(frozen=True)
class ServerKey:
    public: bytes
    path: str  # for messages


@dataclass(frozen=True)
class ClientKeys:
    """A client's own key pair and the public keys of the servers it may connect to."""

    own: KeyPair
    own_path: str
    lcc: ServerKey | None
    observer: ServerKey | None


def load_client_keys(
    directory: str,
    identity: str,
    server_key: str | None = None,
    observer_server_key: str | None = None,
) -> ClientKeys:
    """``DIR/<identity>.key_secret``; the LCC's key from ``--server-key`` or ``DIR/lcc.key``; the
    observer stream's server (detect) from ``DIR/detector.key``. Missing server keys are None."""
    root = Path(directory)
    own_path = root / f"{identity}{SECRET_SUFFIX}"
    own = read_key_pair(own_path)

    def server(explicit: str | None, default: Path) -> ServerKey | None:
        path = Path(explicit) if explicit else default
        if explicit is None and not path.exists():
            return None
        return ServerKey(read_public_key(path), str(path))

    return ClientKeys(
        own=own,
        own_path=str(own_path),
        lcc=server(server_key, root / "lcc.key"),
        observer=server(observer_server_key, root / "detector.key"),
    )


@dataclass(frozen=True)
class ServerKeys:
    own: KeyPair
    allow: dict[bytes, AllowedKey]
    allow_dir: str


def load_server_keys(directory: str, identity: str, allow_dir: str | None = None) -> ServerKeys:
    """``DIR/<identity>.key_secret`` and the allow-list (``--allow-dir`` or ``DIR/allow``)."""
    own = read_key_pair(Path(directory) / f"{identity}{SECRET_SUFFIX}")
    allow_path = allow_dir or str(Path(directory) / ALLOW_DIR)
    return ServerKeys(own=own, allow=load_allow_list(allow_path), allow_dir=allow_path)


def secure_client(socket: zmq.Socket[Any], own: KeyPair, server_public: bytes) -> None:
    """CURVE client options; set before connect."""
    socket.curve_secretkey = own.secret
    socket.curve_publickey = own.public
    socket.curve_serverkey = server_public


def secure_server(socket: zmq.Socket[Any], keys: ServerKeys, domain: bytes) -> None:
    """CURVE server options and the ZAP domain that decides which roles may connect; before bind."""
    socket.curve_server = True
    socket.curve_secretkey = keys.own.secret
    socket.zap_domain = domain


@dataclass
class RefusalCounts:
    """Refused handshakes per socket and reason; accepted ones per socket and role."""

    refused: dict[str, dict[str, int]] = field(default_factory=dict)
    accepted: dict[str, dict[str, int]] = field(default_factory=dict)

    def total_refused(self) -> int:
        return sum(n for reasons in self.refused.values() for n in reasons.values())


class ZapAuthenticator:
    """Answers ZAP requests for one context from the allow-list, in a thread of its own.

    The thread is the price of not touching the callers' hot loops (detect polls one socket with
    a fast path); it only wakes on a connection attempt, and takes the GIL for tens of µs then.
    It binds before ``start`` returns: a CURVE server socket in a context with no ZAP handler
    would admit any client key.
    """

    def __init__(
        self,
        context: zmq.Context[Any],
        allow: dict[bytes, AllowedKey],
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self._context = context
        self._allow = allow
        self._on_refused = on_refused
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._lock = threading.Lock()
        self._logged: set[tuple[str, bytes]] = set()
        self.counts = RefusalCounts()
        self._thread = threading.Thread(target=self._run, name="zap-authenticator", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def snapshot(self) -> RefusalCounts:
        with self._lock:
            return RefusalCounts(
                refused={k: dict(v) for k, v in self.counts.refused.items()},
                accepted={k: dict(v) for k, v in self.counts.accepted.items()},
            )

    def _run(self) -> None:
        socket = self._context.socket(zmq.REP)
        socket.linger = 0
        try:
            socket.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            socket.close(0)
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                if socket.poll(100):
                    socket.send_multipart(self.answer(socket.recv_multipart()))
        finally:
            socket.close(0)

    def answer(self, request: list[bytes]) -> list[bytes]:
        """The ZAP reply to one request (RFC 27); counts and logs refusals."""
        if len(request) < 6:
            return [b"1.0", b"", b"500", b"malformed ZAP request", b"", b""]
        _version, request_id, domain, address, _identity, mechanism, *credentials = request

        def reply(ok: bool, text: str, user_id: str = "") -> list[bytes]:
            return [b"1.0", request_id, b"200" if ok else b"400", text.encode(), user_id.encode(), b""]

        socket_name = domain.decode(errors="replace").removeprefix("laserguard.")
        roles = DOMAIN_ROLES.get(domain)
        who = address.decode(errors="replace")
        if roles is None:
            self._refuse(
                socket_name, "unknown_domain", domain, f"refused {who}: unknown ZAP domain {domain!r}"
            )
            return reply(False, "unknown domain")
        if mechanism != b"CURVE" or not credentials or len(credentials[0]) != 32:
            self._refuse(socket_name, "no_curve", mechanism, f"refused a {mechanism!r} connection from {who}")
            return reply(False, "CURVE required")
        key = credentials[0]
        text = zmq.utils.z85.encode(key).decode()
        entry = self._allow.get(key)
        if entry is None:
            self._refuse(
                socket_name,
                "unknown_key",
                key,
                f"refused {socket_name} connection from {who}: key {text} is not allowed",
            )
            return reply(False, "key not allowed")
        if entry.role not in roles:
            self._refuse(
                socket_name,
                f"{entry.role}_role",
                key,
                f"refused {socket_name} connection from {who}: key {entry.name!r} ({text}) has the {entry.role} role, "
                f"this socket needs {' or '.join(roles)}",
            )
            return reply(False, f"{entry.role} role not allowed here")
        with self._lock:
            by_role = self.counts.accepted.setdefault(socket_name, {})
            by_role[entry.role] = by_role.get(entry.role, 0) + 1
        return reply(True, "OK", f"{entry.role}:{entry.name}")

    def _refuse(self, socket_name: str, reason: str, peer: bytes, message: str) -> None:
        with self._lock:
            reasons = self.counts.refused.setdefault(socket_name, {})
            reasons[reason] = reasons.get(reason, 0) + 1
            first = (socket_name, peer) not in self._logged and len(self._logged) < MAX_LOGGED_PEERS
            if first:
                self._logged.add((socket_name, peer))
        if first:  # once per peer; a client reconnecting every 100 ms is counted, not logged
            log.warning("%s (later attempts are counted, not logged)", message)
            if len(self._logged) == MAX_LOGGED_PEERS:
                log.warning("%d refused peers logged: further new ones are only counted", MAX_LOGGED_PEERS)
        if self._on_refused is not None:
            self._on_refused(socket_name, reason)


_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


class HandshakeWatch:
    """Reads a client socket's handshake events and explains a failure that persists.

    ``problem()`` (call it now and then, it never blocks) returns a message once a handshake
    failed and none succeeded for ``HANDSHAKE_GRACE_S``: a server restarting mid-handshake is not
    a configuration error, a wrong key is.
    """

    def __init__(
        self, socket: zmq.Socket[Any], endpoint: str, what: str, own: str | None, server: str | None
    ) -> None:
        self._monitor = socket.get_monitor_socket(_HANDSHAKE_EVENTS)
        self._endpoint = endpoint
        self._what = what  # "telemetry", "feedback", "observer stream"
        self._own = own  # our secret key file, None without CURVE
        self._server = server  # the server key file we were given
        self._failed_since: float | None = None
        self._failures = 0  # since the last success
        self._definitive = False  # a failure that no retry can heal (refused key, mechanism mismatch)
        self._message: str | None = None

    def close(self) -> None:
        self._monitor.close(0)

    @property
    def definitive(self) -> bool:
        """The failure seen is one no retry heals (not just the server closing the connection)."""
        return self._definitive

    def problem(self, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            kind = event["event"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._failed_since, self._message, self._failures, self._definitive = None, None, 0, False
                continue
            definitive = kind != zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            # A definitive reason stays: the server closing the socket on a reconnect after a
            # mechanism mismatch reads as NO_DETAIL/EPIPE and says less (seen in CI).
            if definitive or not self._definitive:
                self._message = self._explain(kind, int(event["value"]))
            self._failures += 1
            self._definitive = self._definitive or definitive
            if self._failed_since is None:
                self._failed_since = now
        if self._failed_since is None or now - self._failed_since < HANDSHAKE_GRACE_S:
            return None
        return self._message if self._definitive or self._failures >= REPEATED_FAILURES else None

    def _explain(self, kind: int, value: int) -> str:
        where = f"{self._what} at {self._endpoint}"
        if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            return (
                f"{where} refused this client's key ({self._own}): it is not on the server's allow-list, "
                f"or its role may not use this socket (sending feedback needs a command key)"
            )
        if (
            kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            and value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
        ):
            if self._own is None:
                return f"{where} requires CURVE: start this tool with --curve-keys DIR"
            return f"{where} does not use CURVE (started without keys?), but this tool was given --curve-keys"
        if kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and self._own is not None:
            return (
                f"CURVE handshake with {where} failed: the server closed the connection, so "
                f"{self._server} is not that server's public key (check --server-key / the key directory), "
                f"or the server does not use CURVE"
            )
        if kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and value in (errno.EPIPE, errno.ECONNRESET):
            # libzmq's CURVE server with a ZAP handler (lcc-sim) usually drops a plain client
            # before the client reads the mechanism in its greeting: measured, 3 of 6 runs saw
            # only EPIPE, never the mismatch itself.
            return (
                f"handshake with {where} failed: the server closed the connection "
                f"during the handshake ({errno.errorcode[value]}); it probably requires CURVE: "
                f"start this tool with --curve-keys DIR"
            )
        return f"handshake with {where} failed (event 0x{kind:x}, value 0x{value:x})"


class LinkSecurity:
    """One tool's CURVE settings for all its link sockets, and what came of them.

    Without keys (``client`` and ``server`` None) sockets stay plain ZeroMQ, but client sockets
    are still watched: a plain client of a CURVE server learns so from ``problem()``.
    """

    def __init__(
        self,
        client: ClientKeys | None = None,
        server: ServerKeys | None = None,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self.client = client
        self.server = server
        self._on_refused = on_refused
        self._watches: list[HandshakeWatch] = []
        self._zap: ZapAuthenticator | None = None

    @property
    def curve(self) -> bool:
        return self.client is not None or self.server is not None

    def secure_client(self, socket: zmq.Socket[Any], endpoint: str, what: str, server: str = "lcc") -> None:
        """CURVE client options for a socket that connects to the LCC (``server="lcc"``) or to
        detect's observer stream (``"observer"``); call before connect."""
        server_key: ServerKey | None = None
        if self.client is not None:
            server_key = self.client.lcc if server == "lcc" else self.client.observer
            if server_key is None:
                default = (
                    "lcc.key (or --server-key)"
                    if server == "lcc"
                    else "detector.key (or --observer-server-key)"
                )
                raise ValueError(
                    f"no public key for the {what} server at {endpoint}: put {default} in the key directory"
                )
            secure_client(socket, self.client.own, server_key.public)
        self._watches.append(
            HandshakeWatch(
                socket,
                endpoint,
                what,
                self.client.own_path if self.client is not None else None,
                server_key.path if server_key is not None else None,
            )
        )

    def secure_server(self, socket: zmq.Socket[Any], domain: bytes) -> None:
        """CURVE server options, with the ZAP handler running before this returns; before bind."""
        if self.server is None:
            return
        if self._zap is None:
            self._zap = ZapAuthenticator(socket.context, self.server.allow, self._on_refused)
            self._zap.start()
        secure_server(socket, self.server, domain)

    def problem(self) -> str | None:
        """A client socket's persistent handshake failure, explained; None if all is well. A
        definitive reason (mechanism mismatch, refused key) wins over another socket's guess:
        one socket may see only the server closing on it while its sibling saw the mismatch."""
        found = [(watch.definitive, message) for watch in self._watches if (message := watch.problem())]
        return max(found, key=lambda item: item[0])[1] if found else None

    def refusals(self) -> RefusalCounts:
        return self._zap.snapshot() if self._zap is not None else RefusalCounts()

    def close(self) -> None:
        """Before the context terminates: the monitors and the ZAP socket belong to it."""
        for watch in self._watches:
            watch.close()
        self._watches.clear()
        if self._zap is not None:
            self._zap.stop()
            self._zap = None
