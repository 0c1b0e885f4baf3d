"""The persisted Optuna study without Ray running: warm-start filtering, orphaned trials after a killed
driver, the searcher's save/restore through SQLite, and the one-line errors of the new job keys."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from polyp_ray.config import load_job_config
from polyp_ray.errors import ConfigError
from polyp_ray.experiment import OPTUNA_DB as DB_FILE
from polyp_ray.searchspace import load_searchspace
from polyp_ray.storage import ExperimentStore
from polyp_ray.tuning.study import (
    ATTR,
    PersistentOptunaSearch,
    fail_orphans,
    in_space,
    new_searcher,
    open_storage,
    study_record,
    warm_start_trials,
)
from polyp_ray.tuning.trainable import score_key
from tests.conftest import write_job

OLD_SPACE = "model: {choices: [unet]}\nlearning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n"
WIDE_SPACE = "model: {choices: [unet, encoder_decoder]}\nlearning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n"


def _store(storage: Path, name: str) -> ExperimentStore:
    return ExperimentStore(str(storage), name, storage / name)


def _job(folder: Path, space: str = WIDE_SPACE, **settings: object):
    job, space_path = load_job_config(write_job(folder, "j", folder / "exp", space=space, **settings))
    return job, load_searchspace(space_path)


def _old_trial(lr: float, model: str = "unet", value: float = 0.5) -> optuna.trial.FrozenTrial:
    return create_trial(params={"model": model, "learning_rate": lr}, value=value,
                        distributions={"model": CategoricalDistribution([model]),
                                       "learning_rate": FloatDistribution(1e-3, 1e-2, log=True)},
                        intermediate_values={1: value / 2, 2: value})


def test_a_widened_space_keeps_earlier_points_in_its_own_distributions(tmp_path: Path) -> None:
    job, space = _job(tmp_path)
    now = study_record(job)["trial"]
    kept = in_space(_old_trial(3e-3), space, now, now)
    assert kept is not None
    assert kept.params == {"model": "unet", "learning_rate": 3e-3}
    assert kept.distributions["model"] == CategoricalDistribution(["unet", "encoder_decoder"])  # the new choices
    assert kept.distributions["learning_rate"].low == 1e-4
    assert kept.value == 0.5 and kept.intermediate_values == {1: 0.25, 2: 0.5}
    # Narrowed: a point outside the new range is not a point of the new space.
    _, narrow = _job(tmp_path / "n", space="model: {choices: [unet]}\nlearning_rate: {low: 5.0e-3, high: 1.0e-2}\n")
    assert in_space(_old_trial(3e-3), narrow, now, now) is None
    # Trained at another fixed batch size than the new search uses: its score does not carry over.
    assert in_space(_old_trial(3e-3), space, now, {**now, "batch_size": now["batch_size"] * 2}) is None


def test_a_newly_searched_parameter_takes_the_value_it_was_fixed_at_before(tmp_path: Path) -> None:
    job, space = _job(tmp_path, space=WIDE_SPACE + "batch_size: {choices: [4, 8, 16]}\n")
    before = {**study_record(job)["trial"], "batch_size": 8}
    kept = in_space(_old_trial(3e-3), space, study_record(job)["trial"], before)
    assert kept is not None and kept.params["batch_size"] == 8
    assert in_space(_old_trial(3e-3), space, study_record(job)["trial"], {}) is None  # unknown earlier value


def _earlier_experiment(tmp_path: Path, metric: str = "val_dice") -> Path:
    """An experiment folder holding a finished study the way a search leaves it."""
    job, _ = _job(tmp_path / "earlier", space=OLD_SPACE, metric=metric)
    ours = tmp_path / "earlier-exp" / "polyp_ray"
    ours.mkdir(parents=True)
    study = optuna.create_study(storage=f"sqlite:///{ours / DB_FILE}", study_name="earlier-run", direction="maximize")
    study.set_user_attr(ATTR, study_record(job))
    study.add_trials([_old_trial(2e-3, value=0.6), _old_trial(5e-3, value=0.7)])
    study.add_trial(create_trial(state=TrialState.FAIL, params={}, distributions={}))
    return ours.parent


def test_warm_start_reads_the_finished_trials_of_an_earlier_experiment(tmp_path: Path) -> None:
    earlier = _earlier_experiment(tmp_path)
    job, space = _job(tmp_path, warm_start=str(earlier))
    trials, source = warm_start_trials(job, space)
    assert sorted(t.value for t in trials) == [0.6, 0.7]  # the failed one is not a result
    assert "earlier-run" in source
    assert {t.user_attrs["warm_start_from"] for t in trials} == {"earlier-run#0", "earlier-run#1"}
    searcher = new_searcher(job, space, _store(tmp_path / "exp", "new-run"))
    study = optuna.load_study(study_name="new-run", storage=f"sqlite:///{tmp_path / 'exp/new-run/polyp_ray' / DB_FILE}")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
    assert study.user_attrs[ATTR]["metric"] == score_key("val_dice")
    assert searcher.suggest("t1") is not None  # TPE samples the new space with the earlier trials in the study


def test_warm_start_refuses_a_study_ranked_on_another_metric(tmp_path: Path) -> None:
    earlier = _earlier_experiment(tmp_path, metric="val_iou")
    job, space = _job(tmp_path, warm_start=str(earlier))
    with pytest.raises(ConfigError, match=r"^warm_start: .*best_val_iou"):
        warm_start_trials(job, space)


@pytest.mark.parametrize(("stored", "warns"), [
    ({"epochs": 3}, False), ({"epochs": 7}, True),
    ({"max_epochs": 3}, False), ({"max_epochs": 7}, True),  # described before trial.epochs replaced max_epochs
])
def test_warm_start_warns_on_other_epochs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          stored: dict[str, int], warns: bool) -> None:
    earlier = _earlier_experiment(tmp_path)
    study = optuna.load_study(study_name="earlier-run", storage=f"sqlite:///{earlier / 'polyp_ray' / DB_FILE}")
    info = {k: v for k, v in study.user_attrs[ATTR].items() if k != "epochs"}
    study.set_user_attr(ATTR, {**info, **stored})
    job, space = _job(tmp_path, warm_start=str(earlier))  # trial.epochs 3
    assert len(warm_start_trials(job, space)[0]) == 2
    assert ("had another epochs" in capsys.readouterr().err) == warns


def test_a_storage_url_with_several_studies_needs_warm_start_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'team.db'}"
    for name in ("a", "b"):
        optuna.create_study(storage=url, study_name=name).add_trial(create_trial(
            params={"learning_rate": 2e-3}, value=0.1, distributions={"learning_rate": FloatDistribution(1e-3, 1e-2)}))
    job, space = _job(tmp_path, space="learning_rate: {low: 1.0e-3, high: 1.0e-2}\n", warm_start=url)
    with pytest.raises(ConfigError, match=r"^warm_start: .* holds 2 studies .*warm_start_study"):
        warm_start_trials(job, space)
    job.warm_start_study = "b"
    assert len(warm_start_trials(job, space)[0]) == 1


def test_a_resumed_searcher_closes_the_trials_the_killed_driver_left_running(tmp_path: Path) -> None:
    job, space = _job(tmp_path)
    searcher = new_searcher(job, space, _store(tmp_path / "exp", "run"))
    assert searcher.suggest("tune-1") and searcher.suggest("tune-2")
    searcher.on_trial_complete("tune-1", {score_key("val_dice"): 0.4})
    searcher.save(str(tmp_path / "searcher.pkl"))  # Tune's experiment checkpoint
    assert searcher.suggest("tune-3")  # asked for after the checkpoint, then the driver is SIGKILLed

    restored = PersistentOptunaSearch()
    restored.restore(str(tmp_path / "searcher.pkl"))
    url = f"sqlite:///{tmp_path / 'exp/run/polyp_ray' / DB_FILE}"
    study = optuna.load_study(study_name="run", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.RUNNING, TrialState.FAIL]
    restored.on_trial_result("tune-2", {score_key("val_dice"): 0.5, "training_iteration": 1})
    # Tune resumes it; its last epoch reaches only on_trial_complete, and is kept as an intermediate value too.
    restored.on_trial_complete("tune-2", {score_key("val_dice"): 0.6, "training_iteration": 2})
    trial = optuna.load_study(study_name="run", storage=url).trials[1]
    assert trial.state == TrialState.COMPLETE and trial.value == 0.6 and trial.intermediate_values == {1: 0.5, 2: 0.6}
    assert fail_orphans(study, {0, 1}) == []  # nothing left to close


def test_a_second_search_under_the_same_study_name_is_refused(tmp_path: Path) -> None:
    job, space = _job(tmp_path, optuna_storage=f"sqlite:///{tmp_path / 'team.db'}")
    new_searcher(job, space, _store(tmp_path / "exp", "run")).suggest("t")
    with pytest.raises(ConfigError, match=r"^optuna_storage: .*already holds a study named 'run'"):
        new_searcher(job, space, _store(tmp_path / "exp2", "run"))


def test_an_unreachable_team_database_is_one_line_naming_the_key() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConfigError, match=r"^optuna_storage: cannot open postgresql://u:\*\*\*@127") as err:
        open_storage(f"postgresql://u:secret@127.0.0.1:{port}/db", "optuna_storage")
    assert "secret" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("settings", "key"), [
    ({"optuna_storage": "team.db"}, "optuna_storage"),
    ({"callbacks": ["wandb"]}, "callbacks"),
    ({"mlflow_tracking_uri": "http://127.0.0.1:5000"}, "mlflow_tracking_uri"),
    ({"warm_start": "no/such/folder"}, "warm_start"),
    ({"warm_start_study": "x"}, "warm_start_study"),
])
def test_bad_integration_keys_are_refused_naming_the_key(tmp_path: Path, settings: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/j\.yaml: {key}: "):
        _job(tmp_path, **settings)


def test_a_database_without_its_driver_says_which_module_is_missing() -> None:
    if importlib.util.find_spec("pg8000") is not None:
        pytest.skip("pg8000 is installed here, so its absence cannot be shown")
    with pytest.raises(ConfigError, match=r"^optuna_storage: .*driver is not installed \(No module named 'pg8000'\)"):
        open_storage("postgresql+pg8000://u@127.0.0.1:1/db", "optuna_storage")


def test_the_optuna_search_attributes_this_subclass_reads(tmp_path: Path) -> None:
    """PersistentOptunaSearch reads three private attributes of Ray's OptunaSearch: their contract."""
    job, space = _job(tmp_path)
    searcher = new_searcher(job, space, _store(tmp_path / "exp", "run"))
    searcher.suggest("tune-1")
    assert isinstance(searcher._ot_study, optuna.Study)
    assert searcher._ot_trials["tune-1"].number == 0
    assert "tune-1" not in searcher._completed_trials
    searcher.on_trial_complete("tune-1", {score_key("val_dice"): 0.4, "training_iteration": 1})
    assert "tune-1" in searcher._completed_trials
    assert searcher._ot_study.trials[0].state == TrialState.COMPLETE
