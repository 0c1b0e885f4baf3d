"""Make every Keras object of ours known to Keras, so that ``keras.models.load_model`` opens our models
in any process: the custom layers and the learning-rate schedule (registered by their modules), and
the losses, which compiled models name by function name.

``import polyp_ray`` calls ``register`` once Keras is imported (at once when it already is, else
right after ``import keras`` finishes, through an import hook), so the package itself stays free of
TensorFlow until a model is used."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any


def register() -> None:
    import keras

    import polyp_ray.models.layers  # noqa: F401  registers our layers on import
    import polyp_ray.schedules  # noqa: F401  registers the learning-rate schedule
    from polyp_ray.losses import LOSSES

    keras.saving.get_custom_objects().update({fn.__name__: fn for fn in LOSSES.values()})


def register_when_keras_loads() -> None:
    if "keras" in sys.modules:
        register()
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of the top-level ``keras`` package so that ``register``
    runs once the package has finished importing, then steps aside."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        register()
