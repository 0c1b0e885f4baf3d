"""Process-wide TensorFlow/Keras settings that must be made before the first TF op of a trial."""

from __future__ import annotations

import keras
import tensorflow as tf


def configure_tensorflow(precision: str, seed: int, threads: int = 0) -> list[str]:
    """Set memory growth on every GPU, the precision policy and all seeds; return the GPUs seen.

    Memory growth lets several trials share one GPU (fractional GPU requests) instead of the first
    trial grabbing all of its memory. It can only be set before TF initialises the GPU; a trial
    process that already did (a reused Ray worker) keeps its earlier setting, as it keeps its threads.
    """
    # A reused worker drops the previous trial's Keras state (its models' memory, its layer-name counters,
    # its policy) first: the trial builds the model a fresh process would, down to its layer names.
    keras.backend.clear_session()
    if threads > 0:  # trials sharing a node must not each start one thread per core
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(seed)
    return [g.name for g in gpus]
