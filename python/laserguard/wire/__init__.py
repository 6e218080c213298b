"""What both sides of the ZeroMQ link share: the telemetry/feedback codec and sequence tracking.

Owns: encoding and decoding frames (``codec``, the C++ codec bound through ``_core``), topics,
channel names, unit states, per-LCC sequence/gap bookkeeping (``sequence_tracker``), and which
refused frames a service logs (``refusal_log``); CurveZMQ key files and socket security
(``curve_keys``, ``link_security``).
May import: ``laserguard._core`` and numpy only: both the hot path and the tools load it
(``curve_keys`` and ``link_security`` also pyzmq, which every link tool has loaded anyway).
"""
