"""The scoring model: the ``.lgf`` file, export from scikit-learn, ``ForestModel``, the default model.

Owns: exporting a fitted ``Pipeline(StandardScaler, IsolationForest)`` with the optional per-unit
baseline stage (``export``; format 2.0), loading and scoring it through the C++ evaluator
(``forest``), the baseline stage (``baseline``), one v2 score per unit from both stages
(``unit_scoring``), safe sklearn model files (``sklearn_io``), the shipped default model
(``default_model``) and numeric data files (``datafiles``).
May import: ``laserguard._core`` and numpy. Never the services (live, storage, offline, sim), the dashboard or the commands.
"""
