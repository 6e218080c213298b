"""Backward-compatible name for :mod:`laserguard.wire.codec` (public API: ``laserguard.codec.*``)."""

from laserguard.wire.codec import *  # noqa: F403
from laserguard.wire.codec import __all__ as __all__
