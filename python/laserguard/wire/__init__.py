"""What both sides of the ZeroMQ link share: the telemetry/feedback codec and sequence tracking.

Owns: encoding and decoding frames (``codec``, the C++ codec bound through ``_core``), topics,
channel names, and per-LCC sequence/gap bookkeeping (``sequence_tracker``).
May import: ``laserguard._core`` and numpy only: both the hot path and the tools load it.
"""
