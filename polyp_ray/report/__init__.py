"""The experiment report: ``build_report(experiment_dir) -> Path`` and the ``python -m polyp_ray.report`` CLI.

One self-contained HTML file: model comparison with bootstrap intervals, a paired test of the best two
families, learning curves with the ASHA rungs, hyperparameter plots and importance, the best model's
worst and best test images, and what is needed to reproduce the search.
"""

from polyp_ray.report.build import build_report
from polyp_ray.report.cli import main

__all__ = ["build_report", "main"]
