"""build_model(name, ...): the one place a model family is chosen by name.

Builders are named as "module:function" and imported on use, so checking a name (config
validation, the search-space loader) does not load TensorFlow.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    builder: str  # "module:function" taking (image_size, base_width, encoder_weights)
    encoder: str  # a name from polyp_ray.models.encoders.ENCODERS
    pretrained_encoder: bool  # accepts encoder_weights and freeze_encoder_epochs


MODELS: dict[str, ModelSpec] = {
    "unet": ModelSpec("polyp_ray.models.unet:build_unet", "conv", False),
    "vgg16_unet": ModelSpec("polyp_ray.models.vgg16_unet:build_vgg16_unet", "vgg16", True),
    "encoder_decoder": ModelSpec("polyp_ray.models.encoder_decoder:build_encoder_decoder", "conv", False),
}


def build_model(name: str, image_size: int, base_width: int = 64, encoder_weights: str = "none") -> Any:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    module, _, function = MODELS[name].builder.partition(":")
    builder = getattr(importlib.import_module(module), function)
    return builder(image_size=image_size, base_width=base_width, encoder_weights=encoder_weights)


def set_encoder_trainable(model: Any, trainable: bool) -> bool:
    """Freeze or unfreeze a pretrained encoder; False when the model has none."""
    try:
        encoder = model.get_layer("encoder")
    except ValueError:
        return False
    encoder.trainable = trainable
    return True
