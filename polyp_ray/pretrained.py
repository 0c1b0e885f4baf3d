"""Which pretrained weight files a job can need: every (encoder, encoder_weights) pair its trials may
ask for, so the driver can fetch them once, before any trial, and ship them to every node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyp_ray.models.registry import freezable, resolved_encoder

if TYPE_CHECKING:
    from polyp_ray.config import JobConfig
    from polyp_ray.searchspace import SearchSpace


def needed_weights(job: JobConfig, space: SearchSpace | None) -> list[tuple[str, str]]:
    """Every (encoder, encoder_weights) with weights to load that a trial of ``job`` can ask for
    (``space`` None: the job's fixed trial only). An over-estimate where conditions exclude pairs."""
    def possible(name: str) -> list:
        default = getattr(job.trial, name)
        return space.possible(name, default) if space else [default]

    weights = [w for w in possible("encoder_weights") if w not in ("none", "")]
    encoders = set()
    for model in possible("model"):
        for encoder in possible("encoder"):
            try:
                if freezable(model, encoder):
                    encoders.add(resolved_encoder(model, encoder))
            except ValueError:  # a pair no trial can build (vgg16_unet with another encoder)
                continue
    return sorted((e, w) for e in encoders for w in weights)
