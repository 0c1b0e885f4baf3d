"""Segmentation models, chosen by name: ``build_model("unet", image_size=128, base_width=64, encoder="resnet50")``."""

from polyp_ray.models.encoders import ENCODERS
from polyp_ray.models.registry import MODELS, build_model, freezable, resolved_encoder, set_encoder_trainable

__all__ = ["ENCODERS", "MODELS", "build_model", "freezable", "resolved_encoder", "set_encoder_trainable"]
