"""The hot path: ``laserguard detect`` and its round-trip probe.

Owns: scoring one decoded frame and building its feedback (``detector``), hot model reload
(``model_holder``), the detector's Prometheus metrics (``metrics``) and round-trip matching
(``round_trip``).
May import: ``laserguard.model``, ``laserguard.wire``, ``laserguard._core``, numpy,
prometheus-client. Never ``storage`` or ``offline`` (checked by import-linter): the hot path
must not pull in pymongo, scikit-learn or pandas, nor wait on a database.
"""
