"""Holds the serving model and swaps in a new file only if it loads and fits the stream."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from laserguard.model.forest import ForestModel

log = logging.getLogger(__name__)


class ModelHolder:
    """The model a service scores with, reloadable without interrupting the service.

    A new file replaces the current model only after it has been fully loaded and
    validated and its features match `expected_features`; otherwise the old model keeps
    serving and the reason is returned.
    """

    def __init__(self, path: str | os.PathLike[str], expected_features: Sequence[str]) -> None:
        self.path = os.fspath(path)
        self.expected_features = tuple(expected_features)
        self.model = self._load()
        self._mtime = self._stat()

    def _stat(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def _load(self) -> ForestModel:
        model = ForestModel.load(self.path)
        if model.n_features != len(self.expected_features):
            raise ValueError(
                f"model {self.path!r} expects {model.n_features} features, telemetry has "
                f"{len(self.expected_features)} channels {list(self.expected_features)}"
            )
        generic = all(name == f"x{i}" for i, name in enumerate(model.feature_names))
        if not generic and model.feature_names != self.expected_features:
            raise ValueError(
                f"model {self.path!r} was trained on features {list(model.feature_names)}, "
                f"telemetry channels are {list(self.expected_features)}"
            )
        return model

    def file_changed(self) -> bool:
        return self._stat() != self._mtime

    def reload(self) -> str | None:
        """Try to load the file again; returns None on success or the reason it was refused."""
        mtime = self._stat()
        try:
            model = self._load()
        except (OSError, ValueError) as exc:
            self._mtime = mtime  # do not retry the same bad file every poll
            log.error("model reload refused, still serving %s: %s", self.model.version, exc)
            return str(exc)
        log.info("model reloaded: %s -> %s", self.model.version, model.version)
        self.model = model
        self._mtime = mtime
        return None
