"""build_model(model, ..., encoder=...): the one place a model is assembled from names.

``model`` names the decoder (polyp_ray.models.decoders), ``encoder`` the backbone
(polyp_ray.models.encoders); ``vgg16_unet``, the notebook's name, is the unet decoder on vgg16.
Keras is imported on use, so checking names (config validation, the search-space loader, the
weights check before a search) does not load TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polyp_ray.models.encoders import ENCODERS

DEFAULT_ENCODER = "conv"


@dataclass(frozen=True)
class ModelSpec:
    decoder: str  # a name from polyp_ray.models.decoders.DECODERS
    encoder: str | None = None  # an encoder this model always has; None: TrialConfig.encoder chooses


MODELS: dict[str, ModelSpec] = {
    "unet": ModelSpec("unet"),
    "encoder_decoder": ModelSpec("encoder_decoder"),
    "vgg16_unet": ModelSpec("unet", "vgg16"),
}


def family_name(model: str, encoder: Any) -> str:
    """The family a trial belongs to: its decoder on its encoder, by the notebook's names where they
    apply (the unet decoder on vgg16 is the notebook's vgg16_unet, however it was asked for)."""
    if not isinstance(encoder, str) or encoder in ("", DEFAULT_ENCODER) or model == "vgg16_unet":
        return model
    return "vgg16_unet" if (model, encoder) == ("unet", "vgg16") else f"{model}_{encoder}"


def resolved_encoder(model: str, encoder: str = DEFAULT_ENCODER) -> str:
    """The encoder ``model`` is built on: its own where it has one (vgg16_unet -> vgg16), else ``encoder``.

    A model with its own encoder accepts only that one or the default; ValueError otherwise."""
    fixed = MODELS[model].encoder
    if fixed is None:
        return encoder
    if encoder not in (DEFAULT_ENCODER, fixed):
        raise ValueError(f"model {model} is the {MODELS[model].decoder} decoder on {fixed}; for the "
                         f"{encoder} encoder use model: {MODELS[model].decoder}, encoder: {encoder}")
    return fixed


def freezable(model: str, encoder: str = DEFAULT_ENCODER) -> bool:
    """True when the model's encoder is a keras.applications backbone: encoder_weights and
    freeze_encoder_epochs apply to it."""
    return ENCODERS[resolved_encoder(model, encoder)].application is not None


def build_model(model: str, image_size: int, base_width: int = 64, encoder_weights: str = "none",
                encoder: str = DEFAULT_ENCODER) -> Any:
    """A Keras model from RGB in [0, 1] to polyp probabilities, at ``image_size`` (a multiple of 32)."""
    if model not in MODELS:
        raise KeyError(f"unknown model {model!r}; known: {sorted(MODELS)}")
    if encoder not in ENCODERS:
        raise KeyError(f"unknown encoder {encoder!r}; known: {sorted(ENCODERS)}")
    import keras

    from polyp_ray.models.backbones import build_encoder
    from polyp_ray.models.blocks import image_input, sigmoid_head
    from polyp_ray.models.decoders import DECODERS

    spec = MODELS[model]
    name = resolved_encoder(model, encoder)
    image = image_input(image_size)
    features = build_encoder(name, image, base_width, encoder_weights)
    x = DECODERS[spec.decoder](features, ENCODERS[name].strides, base_width)
    # The notebook's names for its two models; "<decoder>_<encoder>" for the others.
    title = model if name in (DEFAULT_ENCODER, spec.encoder) else f"{spec.decoder}_{name}"
    return keras.Model(image, sigmoid_head(x), name=title)


def set_encoder_trainable(model: Any, trainable: bool) -> bool:
    """Freeze or unfreeze a pretrained encoder; False when the model has none."""
    try:
        encoder = model.get_layer("encoder")
    except ValueError:
        return False
    encoder.trainable = trainable
    return True
