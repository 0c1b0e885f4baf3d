"""polyp-ray: hyperparameter search for colon-polyp segmentation (Ray Tune + Optuna + ASHA, Keras 3).

The package follows the data's path: ``data`` -> ``models`` -> ``trial`` -> ``tuning`` -> ``report``.
The public API is the five names below; every other module is internal and may change. Importing the
package stays cheap: TensorFlow and Ray load only when one of these is first used.

    from polyp_ray import build_model, load_model, run_trial, run_search, build_report
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# TensorFlow reads this at import: keep trial logs to what matters (set it yourself to override).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# keras.models.load_model then opens our models (custom layers, schedule, losses) without more ado.
from polyp_ray.models.keras_objects import register_when_keras_loads  # noqa: E402

register_when_keras_loads()

_PUBLIC = {
    "build_model": "polyp_ray.models.registry",  # a model by decoder and encoder name
    "load_model": "polyp_ray.models.saving",  # a checkpoint folder or .keras file, our layers known
    "run_trial": "polyp_ray.trial",  # one training run, reporting each epoch
    "run_search": "polyp_ray.tuning",  # a whole search on Ray Tune
    "build_report": "polyp_ray.report",  # an experiment folder -> one offline HTML file
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'polyp_ray' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
