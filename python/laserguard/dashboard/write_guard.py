"""Who may change state through the dashboard: the token guard of every write action.

Acknowledge, Clear (and any later write action, such as re-baselining a unit) change what other
operators see and what the store's hysteresis does, so on anything but loopback they need a
shared token. The token comes from a file (``--token-file``) or ``LASERGUARD_DASHBOARD_TOKEN``,
never from the command line (visible in ``ps``) or the code; the dashboard refuses to start on a
non-loopback address without one. With a token configured it is required on loopback too.
The token is compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import threading
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "LASERGUARD_DASHBOARD_TOKEN"
MIN_TOKEN_CHARS = 16


class WriteGuardError(ValueError):
    """The dashboard cannot start with these settings (message says which and what to do)."""


def is_loopback(bind: str) -> bool:
    if bind.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def load_token(token_file: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The configured token (file first, then the environment), or None; refuses a short one."""
    source = ""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WriteGuardError(f"cannot read --token-file {token_file!r}: {exc.strerror or exc}") from None
        source = f"--token-file {token_file!r}"
    else:
        token = environ.get(TOKEN_ENV, "").strip()
        source = f"${TOKEN_ENV}"
    if not token:
        if token_file:
            raise WriteGuardError(f"{source} is empty")
        return None
    if len(token) < MIN_TOKEN_CHARS:
        raise WriteGuardError(
            f"the token from {source} has {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
        )
    return token


class WriteGuard:
    """Decides whether a write action may run; counts refusals by reason."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None
        self._lock = threading.Lock()
        self.refused: dict[str, int] = {}

    @property
    def token_required(self) -> bool:
        return self._token is not None

    def refusal(self, supplied: str | None) -> str | None:
        """None if the action may run, else the reason shown to the operator (and counted)."""
        if self._token is None:
            return None
        if not supplied:
            reason, message = (
                "missing_token",
                "refused: this dashboard needs the operator token for that action",
            )
        elif not hmac.compare_digest(supplied.strip().encode(), self._token):
            reason, message = "wrong_token", "refused: wrong operator token"
        else:
            return None
        with self._lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1
        return message


def guard_for(bind: str, token: str | None) -> WriteGuard:
    """The guard for a dashboard listening on ``bind``; refuses a non-loopback bind without a token."""
    if token is None and not is_loopback(bind):
        raise WriteGuardError(
            f"--bind {bind} is not a loopback address, and the dashboard's write actions (acknowledge, "
            f"clear, re-baseline) would be open to anyone who reaches it: set ${TOKEN_ENV} or pass "
            "--token-file FILE with a shared operator token (and put TLS in front), or bind 127.0.0.1"
        )
    return WriteGuard(token)
