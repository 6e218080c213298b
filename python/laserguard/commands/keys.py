"""`laserguard keys`: CurveZMQ key pairs and allow-lists for the hardware link and observer stream.

``generate --out DIR`` writes a complete key directory (layout in laserguard.wire.curve_keys and
docs/operations.md, Security); ``add-client`` adds one more client pair with a role, e.g. for a
second dashboard or a key rotation. Secret files are mode 0600; nothing is ever overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from laserguard.wire.curve_keys import (
    ALLOW_DIR,
    DETECTOR,
    LCC,
    OBSERVER,
    PUBLIC_SUFFIX,
    ROLES,
    SECRET_SUFFIX,
    KeyFileError,
    write_key_pair,
    write_public_key,
)

# The default site: who holds which pair, and the role its public key gets on the allow-list.
SITE = ((LCC, None), (DETECTOR, "command"), (OBSERVER, "read"))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("keys", help="CurveZMQ keys for the LCC link and the observer stream")
    sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    g = sub.add_parser(
        "generate",
        help="write a key directory: lcc, detector (command role), observer (read role) and allow/",
    )
    g.add_argument("--out", required=True, metavar="DIR", help="directory to create or fill (new or empty)")
    g.set_defaults(func=run_generate)
    a = sub.add_parser(
        "add-client", help="add one client key pair to a key directory and allow it with a role"
    )
    a.add_argument("--dir", required=True, metavar="DIR", help="key directory written by 'keys generate'")
    a.add_argument(
        "--name", required=True, help="client name: NAME.key, NAME.key_secret, allow/ROLE/NAME.key"
    )
    a.add_argument(
        "--role", required=True, choices=ROLES, help="read: subscribe only; command: may send feedback"
    )
    a.set_defaults(func=run_add_client)


def _fail(message: str) -> int:
    print(f"laserguard keys: error: {message}", file=sys.stderr)
    return 2


def _targets(root: Path, name: str, role: str | None) -> list[Path]:
    paths = [root / f"{name}{PUBLIC_SUFFIX}", root / f"{name}{SECRET_SUFFIX}"]
    if role is not None:
        paths.append(root / ALLOW_DIR / role / f"{name}{PUBLIC_SUFFIX}")
    return paths


def _write(root: Path, entries: tuple[tuple[str, str | None], ...]) -> int:
    # Check every target first: a refusal leaves the directory as it was, not half-written.
    existing = [p for name, role in entries for p in _targets(root, name, role) if p.exists()]
    if existing:
        more = f" and {len(existing) - 1} more key file(s)" if len(existing) > 1 else ""
        return _fail(f"{existing[0]}{more} exist; refusing to overwrite keys (nothing written)")
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, role in entries:
            pair = write_key_pair(root, name)
            if role is not None:
                allow = root / ALLOW_DIR / role
                allow.mkdir(parents=True, exist_ok=True)
                write_public_key(allow / f"{name}{PUBLIC_SUFFIX}", pair.public)
            print(f"{root / (name + SECRET_SUFFIX)}  ({role or 'server'})")
    except (OSError, KeyFileError) as exc:
        return _fail(str(exc))
    return 0


def run_generate(args: argparse.Namespace) -> int:
    root = Path(args.out)
    if root.exists() and not root.is_dir():
        return _fail(f"--out {args.out!r} is not a directory")
    status = _write(root, SITE)
    if status == 0:
        print(
            f"keys in {root} (secret files mode 0600). Copy to each host only what it needs: "
            "the LCC its lcc.key_secret and allow/; detect detector.key_secret, lcc.key and allow/; "
            "store, dashboard and roundtrip observer.key_secret, lcc.key and detector.key."
        )
    return status


def run_add_client(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        return _fail(f"--dir {args.dir!r} is not a directory")
    if not args.name or os.sep in args.name or args.name.startswith("."):
        return _fail(f"--name {args.name!r} must be a plain file name")
    status = _write(root, ((args.name, args.role),))
    if status == 0:
        print("servers read their allow-list at start: restart the LCC (and detect, for the observer stream)")
    return status
