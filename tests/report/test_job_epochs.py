"""The report reads every trial's number of epochs (ASHA's max_t) from the recorded job: trial.epochs, or
the top-level max_epochs of an experiment recorded before that key was renamed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from polyp_ray.report.experiment import load_experiment
from polyp_ray.report.progress import _rung_counts
from tests.report.fake import write_experiment


@pytest.mark.parametrize(("change", "epochs"), [
    ({}, 4),  # as a search writes it now: trial.epochs
    ({"max_epochs": 6}, 6),  # before the rename: max_epochs counted, the trial's own epochs were unused
])
def test_the_report_reads_the_epochs_of_new_and_older_experiments(tmp_path: Path, change: dict[str, int],
                                                                 epochs: int) -> None:
    exp_path = write_experiment(tmp_path)
    job_file = exp_path / "polyp_ray" / "job.yaml"
    job = yaml.safe_load(job_file.read_text())
    assert job["trial"]["epochs"] == 4
    if change:
        job["trial"]["epochs"] = 10
    job_file.write_text(yaml.safe_dump({**job, **change}))
    exp = load_experiment(exp_path)
    assert exp.epochs == epochs
    assert list(_rung_counts(exp)) == [1, 2, 4, *([6] if epochs == 6 else [])]  # grace 1, factor 2
