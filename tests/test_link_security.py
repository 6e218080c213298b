"""Python side of CURVE on the link: the ZAP authenticator (roles per socket) and the client's
handshake watch (clear messages for a wrong server key, a refused key, CURVE/plain mismatch).
Real sockets on 127.0.0.1, server and client in separate contexts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from laserguard.wire.curve_keys import KeyPair, load_allow_list, write_key_pair, write_public_key
from laserguard.wire.link_security import (
    FEEDBACK_DOMAIN,
    HANDSHAKE_GRACE_S,
    OBSERVER_DOMAIN,
    HandshakeWatch,
    LinkSecurity,
    ServerKeys,
    ZapAuthenticator,
    is_loopback_endpoint,
    secure_client,
    secure_server,
)


class Site:
    def __init__(self, root: Path) -> None:
        self.server = write_key_pair(root, "server")
        self.commander = write_key_pair(root, "commander")
        self.reader = write_key_pair(root, "reader")
        public, secret = zmq.curve_keypair()
        self.stranger = KeyPair(public=public, secret=secret)
        for name, role, pair in (("commander", "command", self.commander), ("reader", "read", self.reader)):
            (root / "allow" / role).mkdir(parents=True, exist_ok=True)
            write_public_key(root / "allow" / role / f"{name}.key", pair.public)
        self.keys = ServerKeys(
            own=self.server, allow=load_allow_list(root / "allow"), allow_dir=str(root / "allow")
        )


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


@pytest.fixture
def contexts() -> Iterator[tuple[zmq.Context[Any], zmq.Context[Any]]]:
    server, client = zmq.Context(), zmq.Context()
    yield server, client
    client.destroy(0)


def _server_sub(ctx: zmq.Context[Any], site: Site, domain: bytes) -> tuple[zmq.Socket[Any], str]:
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    secure_server(sub, site.keys, domain)
    sub.subscribe(b"")
    port = sub.bind_to_random_port("tcp://127.0.0.1")
    return sub, f"tcp://127.0.0.1:{port}"


def _frames_arrive(pub: zmq.Socket[Any], sub: zmq.Socket[Any], seconds: float) -> bool:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pub.send_multipart([b"lcc.1.anomaly", b"x"], zmq.NOBLOCK)
        if sub.poll(20):
            return True
    return False


@pytest.mark.parametrize(
    ("client", "domain", "delivered", "reason"),
    [
        ("commander", FEEDBACK_DOMAIN, True, None),
        ("reader", FEEDBACK_DOMAIN, False, "read_role"),
        ("stranger", FEEDBACK_DOMAIN, False, "unknown_key"),
        ("reader", OBSERVER_DOMAIN, True, None),
        ("stranger", OBSERVER_DOMAIN, False, "unknown_key"),
    ],
)
def test_zap_admits_by_role_per_socket_and_counts_refusals(
    site: Site,
    contexts: tuple[zmq.Context[Any], zmq.Context[Any]],
    client: str,
    domain: bytes,
    delivered: bool,
    reason: str | None,
) -> None:
    server_ctx, client_ctx = contexts
    refusals: list[tuple[str, str]] = []
    zap = ZapAuthenticator(server_ctx, site.keys.allow, on_refused=lambda s, r: refusals.append((s, r)))
    zap.start()
    sub, address = _server_sub(server_ctx, site, domain)
    pub = client_ctx.socket(zmq.PUB)
    pub.linger = 0
    secure_client(pub, getattr(site, client), site.server.public)
    pub.connect(address)
    try:
        assert _frames_arrive(pub, sub, 3.0 if delivered else 1.0) is delivered
        counts = zap.snapshot()
        socket_name = domain.decode().removeprefix("laserguard.")
        if reason is None:
            assert counts.total_refused() == 0
            assert sum(counts.accepted[socket_name].values()) >= 1
        else:
            assert counts.refused[socket_name][reason] >= 1
            assert refusals and refusals[0] == (socket_name, reason)
    finally:
        pub.close(0)
        sub.close(0)
        zap.stop()
        server_ctx.term()


def _watch_problem(watch: HandshakeWatch, within_s: float) -> str | None:
    until = time.monotonic() + within_s
    while time.monotonic() < until:
        problem = watch.problem()
        if problem is not None:
            return problem
        time.sleep(0.05)
    return None


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_server_key", "is not that server's public key"),
        ("refused_key", "refused this client's key"),
        ("plain_client", "requires CURVE: start this tool with --curve-keys"),
        ("plain_server", "does not use CURVE"),
    ],
)
def test_handshake_watch_explains_a_persistent_failure(
    site: Site, contexts: tuple[zmq.Context[Any], zmq.Context[Any]], case: str, expected: str
) -> None:
    server_ctx, client_ctx = contexts
    zap = ZapAuthenticator(server_ctx, site.keys.allow)
    zap.start()
    pub = server_ctx.socket(zmq.PUB)
    pub.linger = 0
    if case != "plain_server":
        secure_server(pub, site.keys, OBSERVER_DOMAIN)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub = client_ctx.socket(zmq.SUB)
    sub.linger = 0
    own: str | None = "reader.key_secret"
    if case == "wrong_server_key":
        secure_client(sub, site.reader, zmq.curve_keypair()[0])
    elif case == "refused_key":
        secure_client(sub, site.stranger, site.server.public)
    elif case == "plain_server":
        secure_client(sub, site.reader, site.server.public)
    else:
        own = None
    watch = HandshakeWatch(sub, f"tcp://127.0.0.1:{port}", "observer stream", own, "server.key")
    sub.connect(f"tcp://127.0.0.1:{port}")
    try:
        # Not before the grace period: a server restarting mid-handshake is no configuration error.
        assert watch.problem() is None
        problem = _watch_problem(watch, HANDSHAKE_GRACE_S + 3.0)
        assert problem is not None and expected in problem
        assert f"127.0.0.1:{port}" in problem
    finally:
        watch.close()
        sub.close(0)
        pub.close(0)
        zap.stop()
        server_ctx.term()


def test_a_good_key_has_no_problem(site: Site, contexts: tuple[zmq.Context[Any], zmq.Context[Any]]) -> None:
    server_ctx, client_ctx = contexts
    zap = ZapAuthenticator(server_ctx, site.keys.allow)
    zap.start()
    pub = server_ctx.socket(zmq.PUB)
    pub.linger = 0
    secure_server(pub, site.keys, OBSERVER_DOMAIN)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub = client_ctx.socket(zmq.SUB)
    sub.linger = 0
    secure_client(sub, site.reader, site.server.public)
    watch = HandshakeWatch(sub, f"tcp://127.0.0.1:{port}", "observer stream", "reader", "server.key")
    sub.connect(f"tcp://127.0.0.1:{port}")
    try:
        assert _watch_problem(watch, HANDSHAKE_GRACE_S + 0.5) is None
        assert zap.snapshot().accepted["observer"]["read"] == 1
    finally:
        watch.close()
        sub.close(0)
        pub.close(0)
        zap.stop()
        server_ctx.term()


def test_a_second_authenticator_in_one_context_is_refused(site: Site) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    first = ZapAuthenticator(ctx, site.keys.allow)
    first.start()
    try:
        with pytest.raises(zmq.ZMQError):
            ZapAuthenticator(ctx, site.keys.allow).start()
    finally:
        first.stop()
        ctx.term()


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:5556", True),
        ("tcp://127.0.0.2:5556", True),
        ("tcp://localhost:5556", True),
        ("tcp://[::1]:5556", True),
        ("ipc:///tmp/x", True),
        ("tcp://0.0.0.0:5556", False),
        ("tcp://*:5556", False),
        ("tcp://10.1.2.3:5556", False),
    ],
)
def test_loopback_endpoints(endpoint: str, loopback: bool) -> None:
    assert is_loopback_endpoint(endpoint) is loopback


class _SeenWatch:
    """What a socket's HandshakeWatch concluded (its inputs are real sockets in the tests above)."""

    def __init__(self, message: str | None, definitive: bool) -> None:
        self.message, self.definitive = message, definitive

    def problem(self) -> str | None:
        return self.message

    def close(self) -> None:
        pass


def test_a_definitive_reason_on_one_socket_wins_over_a_guess_on_another() -> None:
    # Measured against lcc-sim under load: the telemetry socket saw only EPIPE 17 times while the
    # feedback socket saw the mechanism mismatch once; detect must report the mismatch.
    security = LinkSecurity()
    guess = _SeenWatch("the server closed the connection (EPIPE)", definitive=False)
    mismatch = _SeenWatch("does not use CURVE", definitive=True)
    security._watches += [guess, mismatch]  # type: ignore[list-item]
    assert security.problem() == "does not use CURVE"
    security._watches[:] = [guess, _SeenWatch(None, definitive=False)]  # type: ignore[list-item]
    assert security.problem() == "the server closed the connection (EPIPE)"
