"""Hostile or broken HTTP input gets a short 4xx answer, never a stack trace.

The dashboard is a Flask app under Dash. Limits: request bodies (Dash callbacks are small JSON
documents) and URLs are bounded; a callback request must be a JSON object naming its output and
inputs before Dash sees it; any error becomes a one-line JSON answer and a one-line log entry.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

MAX_BODY_BYTES = 256 * 1024  # a full-grid callback is ~20 KB
MAX_URL_CHARS = 4096
CALLBACK_PATH = "/_dash-update-component"


class RejectCounter:
    """Requests refused, by HTTP status (shown in /casa_lcc_data's ``http_rejects``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_status: dict[int, int] = {}

    def add(self, status: int) -> None:
        with self._lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1


def install(server: Any, rejects: RejectCounter) -> None:
    """Add the limits and error handlers to the Flask ``server``."""
    import flask
    from werkzeug.exceptions import HTTPException

    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    def answer(status: int, message: str) -> flask.Response:
        rejects.add(status)
        response = flask.jsonify({"error": message})
        response.status_code = status
        return response

    def check_request() -> flask.Response | None:
        request = flask.request
        if len(request.full_path) > MAX_URL_CHARS:
            return answer(414, f"URL of {len(request.full_path)} characters, limit {MAX_URL_CHARS}")
        if request.path == CALLBACK_PATH and request.method == "POST":
            length = request.content_length
            if length is not None and length > MAX_BODY_BYTES:
                return answer(413, f"request body of {length} bytes, limit {MAX_BODY_BYTES}")
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or "output" not in body or not isinstance(body.get("inputs"), list):
                return answer(400, "a callback request is a JSON object with 'output' and 'inputs'")
        return None

    def http_error(exc: HTTPException) -> flask.Response:
        return answer(exc.code or 400, exc.description or exc.name)

    def unexpected(exc: Exception) -> flask.Response:
        # A callback that fails on input the checks above let through is still the client's input.
        status = 400 if flask.request.path == CALLBACK_PATH else 500
        print(
            f"laserguard dashboard: {flask.request.method} {flask.request.path[:200]} -> {status}: "
            f"{type(exc).__name__}: {str(exc)[:200]}",
            file=sys.stderr,
            flush=True,
        )
        return answer(
            status,
            "the request could not be handled" if status == 500 else f"bad request: {type(exc).__name__}",
        )

    server.before_request(check_request)
    server.register_error_handler(HTTPException, http_error)
    server.register_error_handler(Exception, unexpected)
