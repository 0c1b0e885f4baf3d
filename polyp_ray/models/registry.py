"""build_model(name, ...): the one place a model family is chosen by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras

from polyp_ray.models.encoder_decoder import build_encoder_decoder
from polyp_ray.models.unet import build_unet
from polyp_ray.models.vgg16_unet import build_vgg16_unet


@dataclass(frozen=True)
class ModelSpec:
    builder: Callable[..., keras.Model]
    encoder: str  # a name from polyp_ray.models.encoders.ENCODERS
    pretrained_encoder: bool  # accepts encoder_weights and freeze_encoder_epochs


MODELS: dict[str, ModelSpec] = {
    "unet": ModelSpec(build_unet, "conv", False),
    "vgg16_unet": ModelSpec(build_vgg16_unet, "vgg16", True),
    "encoder_decoder": ModelSpec(build_encoder_decoder, "conv", False),
}


def build_model(name: str, image_size: int, base_width: int = 64, encoder_weights: str = "none") -> keras.Model:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name].builder(image_size=image_size, base_width=base_width, encoder_weights=encoder_weights)


def set_encoder_trainable(model: keras.Model, trainable: bool) -> bool:
    """Freeze or unfreeze a pretrained encoder; False when the model has none."""
    try:
        encoder = model.get_layer("encoder")
    except ValueError:
        return False
    encoder.trainable = trainable
    return True
