"""polyp-ray: hyperparameter search for colon-polyp segmentation (Ray Tune + Optuna + ASHA, Keras 3).

The package follows the data's path: ``data`` -> ``models`` -> ``trial`` -> ``search`` -> ``report``.
Importing it stays cheap: TensorFlow and Ray load only in the modules that need them.
"""

import os

# TensorFlow reads this at import: keep trial logs to what matters (set it yourself to override).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
