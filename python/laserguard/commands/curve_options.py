"""The CurveZMQ flags every tool on the link shares, and turning them into a ``LinkSecurity``.

Clients (detect, store, dashboard, roundtrip): ``--curve-keys DIR``, ``--curve-identity NAME``,
``--server-key FILE`` and, for observers of detect's stream, ``--observer-server-key FILE``.
Servers (detect's observer stream, replay): also ``--allow-dir DIR`` and ``--insecure``.
Key directory layout: laserguard.wire.curve_keys; docs/operations.md, Security.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # zmq is imported only by a command that runs, not by `laserguard --help`
    from laserguard.wire.link_security import LinkSecurity

log = logging.getLogger("laserguard.security")


def add_client_options(parser: Any, identity: str, *, lcc: bool = True, observer: bool = False) -> None:
    g = parser.add_argument_group("CurveZMQ (docs/operations.md, Security)")
    g.add_argument(
        "--curve-keys",
        metavar="DIR",
        help=f"key directory (laserguard keys generate): this tool's pair DIR/{identity}.key_secret and the "
        "servers' public keys; encrypts and authenticates every link socket (default: plain ZeroMQ)",
    )
    g.add_argument(
        "--curve-identity",
        default=identity,
        metavar="NAME",
        help=f"use DIR/NAME.key_secret as this tool's key pair (default {identity})",
    )
    if lcc:
        g.add_argument("--server-key", metavar="FILE", help="the LCC's public key (default DIR/lcc.key)")
    if observer:
        g.add_argument(
            "--observer-server-key",
            metavar="FILE",
            help="detect's public key, for its observer stream (default DIR/detector.key)",
        )


def add_server_options(parser: Any) -> None:
    """For a tool that also binds a link socket; call after add_client_options (same group)."""
    parser.add_argument(
        "--allow-dir",
        metavar="DIR",
        help="allow-list of client keys, DIR/command/*.key and DIR/read/*.key (default: the key directory's allow/)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow binding a non-loopback address without --curve-keys (anyone who reaches it may connect)",
    )


class SecurityUsageError(ValueError):
    """A flag combination or key file a tool cannot start with (exit status 2)."""


def link_security(
    args: argparse.Namespace,
    tool: str,
    *,
    binds: Sequence[str] = (),
    connects_to: Sequence[str] = ("lcc",),
    on_refused: Callable[[str, str], None] | None = None,
) -> LinkSecurity:
    """The tool's LinkSecurity from its flags. ``binds``: endpoints it serves (none for pure clients);
    ``connects_to``: the servers it is a client of, "lcc" and/or "observer" (their public keys must exist).

    Raises SecurityUsageError (naming the flag or file) for unusable keys, a server key without
    --curve-keys, or a non-loopback bind without keys and without --insecure.
    """
    from laserguard.wire.curve_keys import KeyFileError
    from laserguard.wire.link_security import (
        ClientKeys,
        LinkSecurity,
        ServerKeys,
        is_loopback_endpoint,
        load_client_keys,
        load_server_keys,
    )

    directory = getattr(args, "curve_keys", None)
    if directory is None:
        for flag in ("server_key", "observer_server_key", "allow_dir"):
            if getattr(args, flag, None):
                raise SecurityUsageError(
                    f"--{flag.replace('_', '-')} needs --curve-keys DIR (this tool's own key pair)"
                )
        exposed = [e for e in binds if not is_loopback_endpoint(e)]
        if exposed and not getattr(args, "insecure", False):
            raise SecurityUsageError(
                f"refusing to bind {exposed[0]} without --curve-keys: anyone who reaches it could connect; "
                "pass --curve-keys DIR (laserguard keys generate), or --insecure on a trusted network"
            )
        if binds:
            log.warning(
                "%s: no --curve-keys: %s plain ZeroMQ, any process that reaches %s may connect",
                tool,
                "exposed on a non-loopback address," if exposed else "loopback only,",
                ", ".join(binds),
            )
        return LinkSecurity(on_refused=on_refused)
    try:
        client: ClientKeys = load_client_keys(
            directory,
            args.curve_identity,
            getattr(args, "server_key", None),
            getattr(args, "observer_server_key", None),
        )
        for name, key, flag in (
            ("lcc", client.lcc, "--server-key"),
            ("observer", client.observer, "--observer-server-key"),
        ):
            if name in connects_to and key is None:
                default = "lcc.key" if name == "lcc" else "detector.key"
                raise SecurityUsageError(
                    f"{directory}/{default} not found: put that server's public key there or pass {flag} FILE"
                )
        server: ServerKeys | None = None
        if binds:
            server = load_server_keys(directory, args.curve_identity, getattr(args, "allow_dir", None))
    except KeyFileError as exc:
        raise SecurityUsageError(str(exc)) from exc
    return LinkSecurity(client=client, server=server, on_refused=on_refused)
