"""The experiment report: ``build_report(experiment_dir) -> Path`` and the ``python -m polyp_ray.report`` CLI.

One self-contained HTML file: model comparison with bootstrap intervals, a paired test of the best two
families, the search's progress (best score against wall time and compute, trials per ASHA rung),
learning curves with the ASHA rungs, hyperparameter plots and importance, the best model's
worst and best test images, and what is needed to reproduce the search.
"""

from polyp_ray.report.build import build_report
from polyp_ray.report.cli import main

__all__ = ["build_report", "main"]
