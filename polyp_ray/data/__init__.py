"""Data: find pairs in known layouts, validate, group near-duplicates, split, decode once per size, feed
tf.data (docs/data.md)."""

from polyp_ray.data.dataset import (
    DatasetInfo,
    PreparedData,
    SplitArrays,
    describe_dataset,
    prepare_data,
)
from polyp_ray.data.layouts import LAYOUTS, Pair, discover_pairs

__all__ = [
    "LAYOUTS",
    "DatasetInfo",
    "Pair",
    "PreparedData",
    "SplitArrays",
    "describe_dataset",
    "discover_pairs",
    "prepare_data",
]
