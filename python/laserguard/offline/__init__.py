"""The offline pipeline: raw LCC logs -> clean samples -> analysis CSVs -> trained model.

Owns: the raw log format and its writer (``raw_format``, ``raw_writer``), cleaning rules, their
storage and report (``cleaning``, ``clean_store``, ``clean_report``), the training data contract
(``training_data``), the GridSearch over the original grid scored by the C++ engine
(``training``, ``engine_forest``, ``shared_fits``, ``training_report``, ``training_export``),
EDA figures (``eda_figures``), detection quality against injected faults
(``detection_quality``) and optional MLflow logging (``mlflow_logging``).
May import: ``laserguard.model``, ``laserguard.wire``, ``laserguard.sim``, ``laserguard.storage``
(write helpers), scikit-learn, pandas, matplotlib. Never ``live``, ``commands`` or ``dashboard``.
"""
