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

from laserguard.wire.curve_keys import ROLES, SECRET_SUFFIX, SITE_KEYS, KeyFileError, write_key_set


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


def _write(root: Path, entries: tuple[tuple[str, str | None], ...]) -> int:
    try:
        written = write_key_set(root, entries)
    except (OSError, KeyFileError) as exc:
        return _fail(str(exc))
    roles = dict(entries)
    for path in written:
        print(f"{path}  ({roles[path.name.removesuffix(SECRET_SUFFIX)] or 'server'})")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    root = Path(args.out)
    if root.exists() and not root.is_dir():
        return _fail(f"--out {args.out!r} is not a directory")
    status = _write(root, SITE_KEYS)
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
