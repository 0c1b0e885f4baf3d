"""A resumed search must be the search it resumes: changed settings are refused, naming the key."""

from pathlib import Path

import pytest

from polyp_ray.config import load_job_config
from polyp_ray.errors import ConfigError
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.tuning.provenance import check_resume_unchanged, write_provenance
from tests.conftest import write_job


def _recorded(tmp_path: Path) -> tuple[Path, ExperimentLayout]:
    job_path = write_job(tmp_path, "r", tmp_path / "exp")
    job, space_path = load_job_config(job_path)
    ours = ExperimentLayout(tmp_path / "exp" / "r-1")
    write_provenance(ours, job, space_path, {"n_pairs": 1}, "python -m polyp_ray.search")
    return job_path, ours


def test_an_unchanged_job_resumes(tmp_path: Path) -> None:
    job_path, ours = _recorded(tmp_path)
    job, space_path = load_job_config(job_path)
    assert check_resume_unchanged(ours, job, space_path)


@pytest.mark.parametrize(("override", "key"), [
    ("trial.epochs=9", "trial.epochs"),
    ("trial.learning_rate=0.5", "trial.learning_rate"),
    ("data.split_seed=3", "trial.data.split_seed"),
])
def test_a_changed_job_is_refused_naming_the_key(tmp_path: Path, override: str, key: str) -> None:
    job_path, ours = _recorded(tmp_path)
    job, space_path = load_job_config(job_path, [override])
    with pytest.raises(ConfigError, match=rf"--resume: {key}: .* now but .* in the interrupted run"):
        check_resume_unchanged(ours, job, space_path)


def test_a_changed_space_is_refused(tmp_path: Path) -> None:
    job_path, ours = _recorded(tmp_path)
    job, space_path = load_job_config(job_path)
    space_path.write_text(space_path.read_text().replace("choices: [32]", "choices: [64]"))
    with pytest.raises(ConfigError, match="--resume: searchspace: image_size.choices differs"):
        check_resume_unchanged(ours, job, space_path)


def test_no_record_means_unchecked(tmp_path: Path) -> None:
    job_path = write_job(tmp_path, "r", tmp_path / "exp")
    job, space_path = load_job_config(job_path)
    assert not check_resume_unchanged(ExperimentLayout(tmp_path / "nothing"), job, space_path)


def test_a_key_added_since_the_run_counts_at_its_default(tmp_path: Path) -> None:
    job_path, ours = _recorded(tmp_path)
    saved = ours.job
    saved.write_text(saved.read_text().replace("keep_checkpoints: 2\n", ""))  # as an older version wrote it
    assert "keep_checkpoints" not in saved.read_text()
    job, space_path = load_job_config(job_path)
    assert check_resume_unchanged(ours, job, space_path)


def test_a_job_recorded_with_max_epochs_resumes_as_the_job_it_was(tmp_path: Path) -> None:
    import yaml

    job_path, ours = _recorded(tmp_path)
    saved = ours.job
    old = yaml.safe_load(saved.read_text())
    old["max_epochs"] = old["trial"].pop("epochs")  # as written before trial.epochs replaced max_epochs,
    old["trial"]["epochs"] = 10  # ... whose trial.epochs was unused
    saved.write_text(yaml.safe_dump(old, sort_keys=False))
    job, space_path = load_job_config(job_path)
    assert check_resume_unchanged(ours, job, space_path)
    job, space_path = load_job_config(job_path, ["trial.epochs=9"])
    with pytest.raises(ConfigError, match=r"--resume: trial.epochs: 9 now but 3 in the interrupted run"):
        check_resume_unchanged(ours, job, space_path)
