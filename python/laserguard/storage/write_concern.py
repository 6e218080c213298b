"""The write concern of every telemetry write: from the URI when it names one, else ``w=1, j=True``.

``j=True`` is the default because the embedded server lost acknowledged documents on ``kill -9``
without it (design §9). A deployment with a replica set asks for more in its URI
(``?w=majority&journal=true``) and gets exactly that; ``wtimeoutMS`` in the URI is kept too.
"""

from __future__ import annotations

from typing import Any

DEFAULT_W = 1
DEFAULT_JOURNAL = True


def write_concern_from_uri(uri: str) -> Any:
    """A ``pymongo.WriteConcern``: the URI's ``w``/``journal``/``wtimeoutMS``, defaults ``w=1, j=True``.

    Raises ValueError naming the URI option when pymongo refuses it (e.g. ``w=0`` with journal).
    """
    from pymongo.errors import ConfigurationError, InvalidURI
    from pymongo.uri_parser import parse_uri
    from pymongo.write_concern import WriteConcern

    try:
        options = parse_uri(uri, validate=True, warn=False, connect_timeout=1)["options"]
    except (ConfigurationError, InvalidURI, ValueError) as exc:
        raise ValueError(f"cannot read the write concern of the MongoDB URI: {exc}") from exc
    w = options.get("w", DEFAULT_W)
    journal = options.get("journal", DEFAULT_JOURNAL)
    wtimeout = next((v for k, v in options.items() if k.lower() == "wtimeoutms"), None)
    try:
        return WriteConcern(w=w, j=journal, wtimeout=wtimeout)
    except (ConfigurationError, ValueError, TypeError) as exc:
        raise ValueError(f"write concern w={w!r} journal={journal!r} from the URI is refused: {exc}") from exc


def describe(write_concern: Any) -> str:
    """``w=majority j=True`` style text for the start-up log line."""
    document = write_concern.document
    return " ".join(f"{key}={value}" for key, value in document.items()) or "server default"
