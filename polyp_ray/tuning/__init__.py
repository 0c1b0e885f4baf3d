"""The Tune wiring, and the only package that imports Ray: start or attach to Ray, the trainable and
its reporter, the Tuner (OptunaSearch + ASHA), and what happens after the trials (test scores, the
winner, provenance). ``search`` (the CLI) stands on top of it; ``trial`` under it."""

from polyp_ray.tuning.restore import restore_tuner
from polyp_ray.tuning.run import SearchOptions, run_search

__all__ = ["SearchOptions", "restore_tuner", "run_search"]
