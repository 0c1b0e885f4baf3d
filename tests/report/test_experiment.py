"""Reading an experiment folder for the report: each trial's family beside the model it ran."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from polyp_ray.experiment import ExperimentLayout
from polyp_ray.models.registry import family_name
from polyp_ray.report.comparison import family_best
from polyp_ray.report.experiment import load_experiment
from tests.report.fake import write_experiment


def test_the_family_is_a_column_of_its_own_and_the_model_stays_the_decoder(tmp_path: Path) -> None:
    exp_path = write_experiment(tmp_path)
    table = pd.read_csv(ExperimentLayout(exp_path).trials_table, dtype={"trial_id": str})
    table.loc[table["model"] == "unet", "encoder"] = "resnet50"  # a family is a decoder on an encoder
    table.to_csv(ExperimentLayout(exp_path).trials_table, index=False)
    exp = load_experiment(exp_path)
    assert set(exp.trials["model"]) == {"unet", "encoder_decoder"}  # what the trials sampled, unchanged
    expected = [family_name(m, e if isinstance(e, str) else "conv")
                for m, e in zip(exp.trials["model"], exp.trials["encoder"], strict=True)]
    assert list(exp.trials["family"]) == expected and "unet_resnet50" in expected
    assert set(family_best(exp)) == set(expected)
