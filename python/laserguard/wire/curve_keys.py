"""CurveZMQ key files and the key directory every tool reads (docs/operations.md, Security).

Files are ZeroMQ's certificate format (what ``zmq.auth.create_certificates`` and czmq write, and
what ``lcc_link``'s C++ reader parses): ``NAME.key`` holds the public key, ``NAME.key_secret``
both keys and must be readable by its owner only. A file holding just the 40-character Z85 key
(what ``zmq_curve_keypair`` prints) is read too.

A key directory, as ``laserguard keys generate --out DIR`` writes it::

    DIR/lcc.key, lcc.key_secret            the LCC (lcc-sim, replay): CURVE server
    DIR/detector.key, detector.key_secret  detect: command client of the LCC, server of the observer stream
    DIR/observer.key, observer.key_secret  store, dashboard, roundtrip: read clients
    DIR/allow/command/detector.key         allow-list of a server: who may connect, with which role
    DIR/allow/read/observer.key

Each tool reads its own pair (``DIR/<identity>.key_secret``), the public key of each server it
connects to (``lcc.key``, ``detector.key``) and, when it is a server, ``DIR/allow``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.utils.z85

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
ROLES = ("read", "command")  # read: subscribe to telemetry / observer feedback; command: also send feedback
LCC = "lcc"
DETECTOR = "detector"
OBSERVER = "observer"
ALLOW_DIR = "allow"
Z85_KEY_LENGTH = 40


class KeyFileError(ValueError):
    """A key file or key directory that cannot be used; the message names the file."""


@dataclass(frozen=True)
class KeyPair:
    public: bytes  # Z85, 40 bytes
    secret: bytes


@dataclass(frozen=True)
class AllowedKey:
    role: str  # one of ROLES
    name: str  # the key file's name without .key, for logs


def _certificate_value(text: str, name: str) -> str | None:
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(name):
            _, _, value = line.partition("=")
            return value.strip().strip("'\"")
    return None


def _check_key(value: str, what: str) -> bytes:
    key = value.encode("ascii", "replace")
    try:
        valid = len(key) == Z85_KEY_LENGTH and len(zmq.utils.z85.decode(key)) == 32
    except (ValueError, KeyError):
        valid = False
    if not valid:
        raise KeyFileError(f"{what}: {value!r} is not a {Z85_KEY_LENGTH}-character Z85 CURVE key")
    return key


def read_public_key(path: str | Path) -> bytes:
    """The Z85 public key in a ``.key`` (or ``.key_secret``) file."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise KeyFileError(f"cannot read public key file {str(path)!r}: {exc.strerror}") from exc
    value = _certificate_value(text, "public-key")
    return _check_key(value if value is not None else text.strip(), f"public key file {str(path)!r}")


def read_key_pair(path: str | Path) -> KeyPair:
    """Both keys from a ``.key_secret`` file; refused if group or others may read it."""
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise KeyFileError(f"cannot read secret key file {str(path)!r}: {exc.strerror}") from exc
    if mode & 0o077:
        # A secret key others can read is no longer secret: refuse, as ssh does.
        raise KeyFileError(
            f"secret key file {str(path)!r} has mode {stat.S_IMODE(mode):04o}; it must be readable by "
            f"its owner only (chmod 600 {str(path)!r})"
        )
    value = _certificate_value(text, "secret-key")
    secret = _check_key(value if value is not None else text.strip(), f"secret key file {str(path)!r}")
    public = zmq.curve_public(secret)
    stated = _certificate_value(text, "public-key")
    if stated is not None and stated.encode("ascii", "replace") != public:
        raise KeyFileError(
            f"secret key file {str(path)!r}: its public-key line does not belong to its secret key"
        )
    return KeyPair(public=public, secret=secret)


def _write_exclusive(path: Path, text: str, mode: int) -> None:
    # O_EXCL: never overwrite a key (an operator's running deployment may depend on it).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, mode)  # the umask may have removed bits of `mode`, never added any


def _certificate(pair: KeyPair, with_secret: bool) -> str:
    kind = "CURVE secret certificate: keep it on this host, mode 0600" if with_secret else "CURVE public key"
    text = f"#   ZeroMQ {kind} (laserguard keys generate)\nmetadata\ncurve\n"
    text += f'    public-key = "{pair.public.decode()}"\n'
    if with_secret:
        text += f'    secret-key = "{pair.secret.decode()}"\n'
    return text


def write_key_pair(directory: Path, name: str, pair: KeyPair | None = None) -> KeyPair:
    """Writes ``name.key`` (0644) and ``name.key_secret`` (0600); refuses to overwrite either."""
    if pair is None:
        public, secret = zmq.curve_keypair()
        pair = KeyPair(public=public, secret=secret)
    public_path = directory / f"{name}{PUBLIC_SUFFIX}"
    secret_path = directory / f"{name}{SECRET_SUFFIX}"
    for path in (public_path, secret_path):
        if path.exists():
            raise KeyFileError(f"{str(path)!r} exists; refusing to overwrite a key (remove it first)")
    _write_exclusive(secret_path, _certificate(pair, with_secret=True), 0o600)
    _write_exclusive(public_path, _certificate(pair, with_secret=False), 0o644)
    return pair


def write_public_key(path: Path, public: bytes) -> None:
    """Writes one public key file (an allow-list entry); refuses to overwrite."""
    if path.exists():
        raise KeyFileError(f"{str(path)!r} exists; refusing to overwrite a key (remove it first)")
    _write_exclusive(path, _certificate(KeyPair(public=public, secret=b""), with_secret=False), 0o644)


def load_allow_list(directory: str | Path) -> dict[bytes, AllowedKey]:
    """``DIR/command/*.key`` and ``DIR/read/*.key`` -> {raw 32-byte key: role and name}."""
    root = Path(directory)
    if not root.is_dir():
        raise KeyFileError(f"allow-list directory {str(root)!r} does not exist")
    allowed: dict[bytes, AllowedKey] = {}
    for role in ("command", "read"):
        folder = root / role
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{PUBLIC_SUFFIX}")):
            raw = zmq.utils.z85.decode(read_public_key(path))
            if raw in allowed:
                other = allowed[raw]
                raise KeyFileError(
                    f"allow-list: key of {path.stem!r} ({role}) is already listed as {other.name!r} "
                    f"({other.role}); a key has one role"
                )
            allowed[raw] = AllowedKey(role=role, name=path.stem)
    if not allowed:
        raise KeyFileError(
            f"allow-list directory {str(root)!r} has no client keys "
            f"(expected {root}/command/*.key and {root}/read/*.key)"
        )
    return allowed


# The default site: who holds which pair, and the role its public key gets on the allow-list.
SITE_KEYS: tuple[tuple[str, str | None], ...] = ((LCC, None), (DETECTOR, "command"), (OBSERVER, "read"))


def write_key_set(root: Path, entries: tuple[tuple[str, str | None], ...] = SITE_KEYS) -> list[Path]:
    """Key pairs for (name, role) entries in ``root``, each public key with a role also in
    ``root/allow/<role>/``. Checks every target first, so a refusal writes nothing. Returns the
    secret files written."""
    targets = []
    for name, role in entries:
        targets += [root / f"{name}{PUBLIC_SUFFIX}", root / f"{name}{SECRET_SUFFIX}"]
        if role is not None:
            targets.append(root / ALLOW_DIR / role / f"{name}{PUBLIC_SUFFIX}")
    existing = [p for p in targets if p.exists()]
    if existing:
        more = f" and {len(existing) - 1} more key file(s)" if len(existing) > 1 else ""
        raise KeyFileError(f"{existing[0]}{more} exist; refusing to overwrite keys (nothing written)")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, role in entries:
        pair = write_key_pair(root, name)
        if role is not None:
            allow = root / ALLOW_DIR / role
            allow.mkdir(parents=True, exist_ok=True)
            write_public_key(allow / f"{name}{PUBLIC_SUFFIX}", pair.public)
        written.append(root / f"{name}{SECRET_SUFFIX}")
    return written
