"""The experiment folder has one owner: no other module of the package spells one of its file or folder
names, and one reader turns every version of a recorded job we shipped into the job of now."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from polyp_ray import experiment
from polyp_ray.config import JobConfig, to_dict
from polyp_ray.experiment import ExperimentLayout, read_job, recorded_epochs

PACKAGE = Path(experiment.__file__).resolve().parent
OWNER = Path(experiment.__file__).resolve()
FILE_NAME = re.compile(r"^[\w-]+\.(json|yaml|csv|db|html|keras|txt)$")


def layout_file_names() -> set[str]:
    """Every file name the layout module spells (its constants), so a name added there is checked too."""
    tree = ast.parse(OWNER.read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and FILE_NAME.match(n.value)}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            found.add(id(body[0].value))
    return found


def spelled(source: str, files: set[str], folders: set[str]) -> list[str]:
    """Where ``source`` spells a file name of the folder in a string (docstrings aside: they may name
    the files they describe), or joins a path with one of its folder names (``ours / "best"``)."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found += [f"line {node.lineno}: {name!r}" for name in files if name in node.value]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) \
                and str(node.right.value).split("/")[0] in folders:
            found.append(f"line {node.lineno}: / {node.right.value!r}")
    return found


def test_no_file_name_of_the_experiment_folder_is_spelled_outside_the_layout() -> None:
    files, folders = layout_file_names(), set(experiment.FOLDERS)
    assert {"job.yaml", "trials.csv", "trial_config.json", "test_metrics.json", "generalisation.json"} <= files
    found = [f"{path.relative_to(PACKAGE.parent)} {hit}" for path in sorted(PACKAGE.rglob("*.py")) if path != OWNER
             for hit in spelled(path.read_text(), files, folders)]
    assert not found, "experiment-folder names spelled outside polyp_ray/experiment.py:\n" + "\n".join(found)


def test_the_check_sees_a_spelled_name_and_a_folder_join() -> None:
    files, folders = layout_file_names(), set(experiment.FOLDERS)
    source = ('def f(ours):\n    """Reads trials.csv."""\n'
              '    return ours / "trials.csv", ours / "best" / "x", f"{ours}/job.yaml"\n')
    assert sorted(spelled(source, files, folders)) == ["line 3: 'job.yaml'", "line 3: 'trials.csv'",
                                                       "line 3: / 'best'"]


def _record(tmp_path: Path, body: dict) -> ExperimentLayout:
    layout = ExperimentLayout(tmp_path / "exp")
    layout.ours.mkdir(parents=True)
    layout.job.write_text(yaml.safe_dump(body, sort_keys=False))
    return layout


def test_a_job_recorded_now_reads_back_as_itself(tmp_path: Path) -> None:
    job = JobConfig(name="now", num_samples=5)
    job.trial.epochs = 7
    layout = _record(tmp_path, to_dict(job))
    assert to_dict(layout.read_job()) == to_dict(job)
    assert recorded_epochs(layout.job_record()) == 7


def test_a_job_recorded_before_trial_epochs_reads_as_the_job_it_was(tmp_path: Path) -> None:
    """Before 9c18ab2 the top-level max_epochs was every trial's budget and trial.epochs was unused."""
    old = to_dict(JobConfig(name="old"))
    old.pop("keep_checkpoints")  # a key added since: it counts at its default
    old["trial"]["epochs"] = 10
    old["max_epochs"] = 4
    layout = _record(tmp_path, old)
    job = read_job(layout.job)
    assert job.trial.epochs == 4 and job.keep_checkpoints == JobConfig().keep_checkpoints
    assert recorded_epochs(layout.job_record()) == 4


def test_a_study_description_keeps_its_epochs_at_the_top() -> None:
    assert recorded_epochs({"epochs": 3, "trial": {}}) == 3
    assert recorded_epochs({"max_epochs": 5, "trial": {}}) == 5  # described before the rename
    assert recorded_epochs({}) is None


def test_an_unreadable_job_record_leaves_the_report_an_empty_mapping(tmp_path: Path) -> None:
    layout = _record(tmp_path, {})
    layout.job.write_text("name: [unclosed\n")
    assert layout.job_record() == {}


def test_a_trial_config_reads_back_typed_or_fails_in_one_line_naming_the_file(tmp_path: Path) -> None:
    import json

    import pytest

    from polyp_ray.config import TrialConfig
    from polyp_ray.errors import ConfigError

    files = ExperimentLayout(tmp_path).trial("t1")
    written = TrialConfig(model="encoder_decoder", image_size=64, threshold=0.4)
    files.write_config(written)
    assert files.read_config() == written
    body = json.loads(files.config.read_text())
    files.config.write_text(json.dumps({**body, "image_size": "64"}))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(files.config))}: image_size: expected int"):
        files.read_config()
    files.config.write_text("{half")
    with pytest.raises(ConfigError, match=r"trial_config.json: not valid JSON"):
        files.read_config()
