"""Telemetry, scores and alarms in MongoDB (pymongo), and the database's own operations.

Owns: the ``store`` service (``service``), documents and latest state (``telemetry_store``),
batched idempotent journaled writes (``batch_writer``), the disk spool used while the database
is away (``spool``), collection names and indexes (``schema``), alarm hysteresis (``alarms``),
the Prometheus exporter of stored state (``exporter``), the embedded MongoDB-wire server
(``embedded_server``, run as a separate process, never imported), database CLI options
(``database_options``) and the store's metrics (``metrics``).
May import: ``laserguard.model``, ``laserguard.wire``, ``laserguard._core``, pymongo,
prometheus-client. Never ``live``, ``commands`` or ``dashboard``.
"""
