"""The scoring model: the ``.lgf`` file, export from scikit-learn, ``ForestModel``, the default model.

Owns: exporting a fitted ``Pipeline(StandardScaler, IsolationForest)`` (``export``), loading and
scoring it through the C++ evaluator (``forest``), safe sklearn model files (``sklearn_io``), the
shipped default model (``default_model``), numeric data files (``datafiles``) and the per-unit
baseline feature stage (``unit_baseline``).
May import: ``laserguard._core`` and ``laserguard.wire`` (channel names); third-party numeric
libraries. Never the services (live, storage, offline, sim), the dashboard or the commands.
"""
