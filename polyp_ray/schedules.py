"""The optimizer of a trial: Adam on a cosine learning-rate decay over the whole run.

The schedule can start part-way (``offset`` steps in) so that unfreezing a pretrained encoder can
begin a FRESH Adam, whose bias correction keeps the first updates at or below the learning rate,
while the learning rate carries on where the run was. (A fresh Adam whose step counter is set to the
steps already done keeps the counter but loses the correction: its first updates are about 3x the
learning rate, on the pretrained encoder.)
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="polyp_ray")
class ShiftedCosineDecay(keras.optimizers.schedules.CosineDecay):
    """Keras's CosineDecay evaluated at ``step + offset``."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, offset: int = 0, **kwargs) -> None:
        super().__init__(initial_learning_rate, decay_steps, **kwargs)
        self.offset = int(offset)

    def __call__(self, step):
        return super().__call__(keras.ops.add(step, self.offset))

    def get_config(self) -> dict:
        return {**super().get_config(), "offset": self.offset}


def cosine_adam(learning_rate: float, total_steps: int, offset: int = 0) -> keras.optimizers.Adam:
    """Adam with the learning rate decaying to 0 over ``total_steps``, starting ``offset`` steps in."""
    return keras.optimizers.Adam(learning_rate=ShiftedCosineDecay(learning_rate, max(1, total_steps), offset))
