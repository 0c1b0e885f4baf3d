"""Segmentation models, chosen by name: ``build_model("unet", image_size=128, base_width=64)``."""

from polyp_ray.models.registry import MODELS, build_model, set_encoder_trainable

__all__ = ["MODELS", "build_model", "set_encoder_trainable"]
