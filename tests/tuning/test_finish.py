"""After the trials: a checkpoint that cannot be scored marks its trial, and the others, the table and
the winner are still written; a PBT clone keeps its own row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from polyp_ray.config import DataConfig, JobConfig, TrialConfig
from polyp_ray.data.dataset import prepare_data


class FakeResult:
    """What summarise_trials reads of a ray.tune.Result."""

    def __init__(self, trial_id: str, checkpoint: Any, val_dice: float) -> None:
        self.metrics = {"trial_id": trial_id, "time_total_s": 5.0, "epoch": 1, "val_dice": val_dice}
        self.metrics_dataframe = pd.DataFrame([self.metrics])
        self.config = {"model": "unet"}
        self.error = None
        self.path = f"/nowhere/{trial_id}"
        self.best_checkpoints = [(checkpoint, self.metrics)]

    def get_best_checkpoint(self, metric: str, mode: str) -> Any:
        return self.best_checkpoints[0][0]


def test_a_pbt_clone_that_never_reported_again_keeps_its_own_row_and_records_its_donor() -> None:
    # Ray hands a trial restored from another trial's checkpoint that checkpoint's metrics as its last
    # result (Trial.on_restore); a clone of the donor's last epoch reports nothing more. Keyed by those
    # metrics, the clone's row replaced its donor's (CI: 1 row of a 2-trial PBT search).
    from polyp_ray.tuning.finish import _trial_row

    job = JobConfig(name="p", grace_period=1, trial=TrialConfig(epochs=2))
    donor_last = {"trial_id": "a_00001", "time_total_s": 30.0, "epoch": 2, "val_dice": 0.7, "node_ip": "10.0.0.9"}
    clone = FakeResult("a_00000", None, 0.4)
    clone.metrics_dataframe = pd.DataFrame([{**clone.metrics, "time_total_s": 12.0, "node_ip": "127.0.0.1"}])
    clone.metrics = donor_last
    row, _ = _trial_row(clone, job)
    assert row["trial_id"] == "a_00000"
    assert row["wall_s"] == 12.0 and row["node_ip"] == "127.0.0.1" and row["epochs_run"] == 1
    assert row["lineage"] == "a_00001@2"
    donor = FakeResult("a_00001", None, 0.7)
    donor.metrics = {**donor_last, "lineage": "a_00002@1"}
    donor.metrics_dataframe = pd.DataFrame([donor.metrics])
    row, _ = _trial_row(donor, job)  # a trial's own last report is read as it is
    assert row["trial_id"] == "a_00001" and row["lineage"] == "a_00002@1" and row["wall_s"] == 30.0


def test_a_trial_whose_reports_tune_could_not_read_is_read_from_its_own_folder(tmp_path: Path) -> None:
    # Tune hands an empty frame where it could not read a trial's result.json (CI: a 2-epoch PBT trial
    # listed with 0 epochs run); the reports are read again from the trial's folder, a torn line skipped.
    import json

    from polyp_ray.tuning.finish import _trial_row

    job = JobConfig(name="p", grace_period=1, trial=TrialConfig(epochs=2))
    rows = [{"trial_id": "b_00000", "epoch": e, "val_dice": 0.1 * e, "time_total_s": 5.0 * e} for e in (1, 2)]
    (tmp_path / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"trial_id": "b_0')
    trial = FakeResult("b_00000", None, 0.2)
    trial.metrics_dataframe, trial.path = pd.DataFrame(), str(tmp_path)
    row, _ = _trial_row(trial, job)
    assert row["trial_id"] == "b_00000" and row["epochs_run"] == 2 and not row["stopped_early"]
    # A trial PBT restarted: the worker's synced folder left result.json empty (CI), while the driver's
    # progress.csv kept every row.
    (tmp_path / "result.json").write_text("")
    pd.DataFrame(rows).to_csv(tmp_path / "progress.csv", index=False)
    row, _ = _trial_row(trial, job)
    assert row["trial_id"] == "b_00000" and row["epochs_run"] == 2


def test_a_search_whose_budget_ended_before_any_epoch_says_so_in_one_line(tmp_path: Path) -> None:
    # Seen on an overloaded machine: a 30 s budget ended before any trial's first epoch, and the table's
    # sort by a column no trial reported was a KeyError traceback.
    from polyp_ray.errors import PolypRayError
    from polyp_ray.experiment import ExperimentLayout
    from polyp_ray.tuning.budget import NOT_STARTED
    from polyp_ray.tuning.finish import summarise_trials

    job = JobConfig(name="b", grace_period=1, time_budget_s=30.0, trial=TrialConfig(epochs=2))
    results = []
    for index in range(2):
        trial = FakeResult(f"c_0000{index}", None, 0.0)
        trial.metrics, trial.metrics_dataframe, trial.path = {}, pd.DataFrame(), str(tmp_path / f"t{index}")
        results.append(trial)
    layout = ExperimentLayout(tmp_path / "exp")
    layout.ours.mkdir(parents=True)
    with pytest.raises(PolypRayError, match=r"no trial trained an epoch within time_budget_s \(30 s\)") as err:
        summarise_trials(results, job, {}, {}, layout)
    assert "\n" not in str(err.value)
    assert set(pd.read_csv(layout.trials_table)["status"]) == {NOT_STARTED}


@pytest.mark.slow
def test_a_failed_scoring_marks_its_trial_and_the_rest_carry_on(tmp_path: Path) -> None:
    import ray
    from ray import tune

    from polyp_ray.experiment import ExperimentLayout
    from polyp_ray.models import build_model
    from polyp_ray.models.saving import save_checkpoint_model
    from polyp_ray.tuning.finish import summarise_trials

    data_config = DataConfig(synthetic_count=24, val_fraction=0.25, test_fraction=0.25)
    job = JobConfig(name="f", grace_period=1,
                    trial=TrialConfig(epochs=1, base_width=4, image_size=32, batch_size=4, num_predictions=1,
                                      data=data_config))
    good, broken = tmp_path / "good", tmp_path / "broken"
    save_checkpoint_model(build_model("unet", 32, 4), good)
    broken.mkdir()
    (broken / "model").mkdir()
    (broken / "model" / "config.json").write_text("{not json")
    prepared = {32: prepare_data(data_config, 32)}
    ray.init(address="local", num_cpus=1, include_dashboard=False)
    try:
        refs = {32: ray.put(prepared[32])}
        results = [FakeResult("bad", tune.Checkpoint.from_directory(str(broken)), 0.9),
                   FakeResult("ok", tune.Checkpoint.from_directory(str(good)), 0.5)]
        layout = ExperimentLayout(tmp_path)
        table, _ = summarise_trials(results, job, prepared, refs, layout)
    finally:
        ray.shutdown()
    rows = table.set_index("trial_id")
    assert isinstance(rows.loc["bad", "test_error"], str) and rows.loc["bad", "test_error"]
    assert pd.isna(rows.loc["bad", "test_dice"])
    assert pd.isna(rows.loc["ok", "test_error"]) and 0 <= rows.loc["ok", "test_dice"] <= 1
    assert layout.trials_table.is_file()
    assert layout.trial("ok").test_metrics.is_file()
    # The best trial by validation could not be loaded: the winner is the best one that could.
    from polyp_ray.models.saving import load_model

    assert load_model(layout.best_model).count_params() > 0
