"""Decoders by name; any decoder sits on any encoder of polyp_ray.models.encoders.

A decoder upsamples the bottleneck x2 per block until the output is at full resolution. Its width is
set by ``base_width`` alone, the same for every encoder: the block whose output is at stride s has
``base_width * s`` filters. On the conv and vgg16 encoders (bottleneck at stride 16) that is the
notebook's decoder; on encoders with features at strides 2..32 it is one block more, the last without a
skip (as smp's Unet), and ``base_width=16`` gives smp's default decoder channels (256, 128, 64, 32, 16).
"""

from __future__ import annotations

from collections.abc import Callable

from polyp_ray.models.blocks import decoder_block


def unet_decoder(features: list, strides: tuple[int, ...], base_width: int) -> object:
    """U-Net: each block concatenates the encoder feature at its output stride, where there is one."""
    return _decode(features, strides, base_width, use_skips=True)


def plain_decoder(features: list, strides: tuple[int, ...], base_width: int) -> object:
    """The notebook's encoder-decoder: the same blocks, no skip connections (only the bottleneck is read)."""
    return _decode(features, strides, base_width, use_skips=False)


def _decode(features: list, strides: tuple[int, ...], base_width: int, use_skips: bool):
    skips = dict(zip(strides[:-1], features[:-1], strict=True))
    x, stride = features[-1], strides[-1]
    while stride > 1:
        stride //= 2
        skip = skips.get(stride) if use_skips else None
        # Named by the stride's level (dec1 outputs full resolution), the names the notebook's U-Net had.
        x = decoder_block(x, skip, base_width * stride, f"dec{stride.bit_length()}")
    return x


DECODERS: dict[str, Callable[[list, tuple[int, ...], int], object]] = {
    "unet": unet_decoder,
    "encoder_decoder": plain_decoder,
}
