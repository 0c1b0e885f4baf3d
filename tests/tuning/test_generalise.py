"""After a search: the winner, each family's best and the top-k ensemble scored on test and on an
external set (tiny_experiment lists a synthetic one from another seed), the report's table, and
``predict --ensemble K --tta`` on the finished experiment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polyp_ray.experiment import OURS
from polyp_ray.models.registry import family_name
from tests.conftest import EXTERNAL_PAIRS, write_job

pytestmark = pytest.mark.slow


def _body(experiment: Path) -> dict:
    return json.loads((experiment / OURS / "generalisation.json").read_text())


def _scored(experiment: Path) -> pd.DataFrame:
    table = pd.read_csv(experiment / OURS / "trials.csv")
    if "test_error" in table:
        table = table[table["test_error"].isna()]
    return table[table["test_dice"].notna()]


def _configs(experiment: Path, ids) -> dict[str, dict]:
    return {t: json.loads((experiment / OURS / "trials" / t / "trial_config.json").read_text()) for t in ids}


def test_every_family_best_and_the_winner_are_scored_on_test_and_the_external_set(tiny_experiment: Path) -> None:
    body, scored = _body(tiny_experiment), _scored(tiny_experiment)
    assert body["sets"]["test"]["n_images"] > 0 and body["sets"]["other_centre"]["n_images"] == EXTERNAL_PAIRS
    rows = {row["label"]: row for row in body["rows"]}
    winner = str(scored.iloc[0]["trial_id"])  # trials.csv is in validation order
    assert rows["winner"]["trial_ids"] == [winner]
    configs = _configs(tiny_experiment, scored["trial_id"])
    families: dict[str, str] = {}
    for trial_id in scored["trial_id"]:
        families.setdefault(family_name(configs[trial_id]["model"], configs[trial_id]["encoder"]), trial_id)
    assert len(families) >= 2, "the tiny search should score several families"
    assert {r["label"] for r in body["rows"] if r["kind"] == "family"} == {f"best {f}" for f in families}
    for name, trial_id in families.items():
        row = rows[f"best {name}"]
        assert row["trial_ids"] == [trial_id]
        # The same protocol as the trial's own test evaluation: the same test Dice to rounding.
        test_dice = float(scored.loc[scored["trial_id"] == trial_id, "test_dice"].iloc[0])
        assert row["sets"]["test"]["dice"] == pytest.approx(test_dice, abs=1e-5)
        external = row["sets"]["other_centre"]
        assert external["n"] == EXTERNAL_PAIRS and external["dice_low"] <= external["dice"] <= external["dice_high"]
        assert len(row["per_image_dice"]["other_centre"]) == EXTERNAL_PAIRS


def test_the_ensemble_and_tta_rows_are_paired_against_the_winner(tiny_experiment: Path) -> None:
    body, scored = _body(tiny_experiment), _scored(tiny_experiment)
    rows = {row["label"]: row for row in body["rows"]}
    k = min(3, len(scored))
    ensemble = rows[f"top-{k} ensemble"]
    assert ensemble["trial_ids"] == [str(t) for t in scored["trial_id"][:k]]
    for label in (f"top-{k} ensemble", "winner + flip TTA", f"top-{k} ensemble + flip TTA"):
        for name in ("test", "other_centre"):
            paired = rows[label]["sets"][name]["vs_winner"]
            mine = np.array(rows[label]["per_image_dice"][name])
            theirs = np.array(rows["winner"]["per_image_dice"][name])
            assert paired["mean_difference"] == pytest.approx(float(np.mean(mine - theirs)), abs=1e-5)
            assert paired["low"] <= paired["mean_difference"] <= paired["high"]
    assert "vs_winner" not in rows["winner"]["sets"]["test"]
    kept = json.loads((tiny_experiment / OURS / "ensemble" / "ensemble.json").read_text())
    assert [m["trial_id"] for m in kept["members"]] == ensemble["trial_ids"]
    assert all((tiny_experiment / OURS / "ensemble" / m["file"]).is_file() for m in kept["members"])


def test_the_report_shows_the_generalisation_table(tiny_experiment: Path, tmp_path: Path) -> None:
    from polyp_ray.report import build_report

    html = build_report(tiny_experiment, tmp_path / "report.html", gallery=False).read_text()
    section = html[html.index('id="generalisation"'):]
    section = section[: section.index("</section>")]
    assert "other_centre" in section and f"{EXTERNAL_PAIRS} images" in section
    winner = _body(tiny_experiment)["rows"][0]["sets"]["other_centre"]
    assert f"{winner['dice']:.3f}<br><small>[{winner['dice_low']:.3f}, {winner['dice_high']:.3f}]" in section
    assert "ensemble" in section and "vs winner" in section


def test_predict_with_the_ensemble_and_tta(tiny_experiment: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    from polyp_ray.predict import main

    images = tmp_path / "new"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(70, 50), (33, 61)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images / f"frame{i}.png")
    out = tmp_path / "masks"
    assert main(["--experiment", str(tiny_experiment), "--ensemble", "2", "--tta", "--images", str(images),
                 "--out", str(out)]) == 0
    assert "an ensemble of 2 models" in capsys.readouterr().out
    for i, shape in enumerate([(50, 70), (61, 33)]):
        mask = np.asarray(Image.open(out / f"frame{i}_mask.png"))
        assert mask.shape == shape and set(np.unique(mask)) <= {0, 255}
    kept = len(json.loads((tiny_experiment / OURS / "ensemble" / "ensemble.json").read_text())["members"])
    assert main(["--experiment", str(tiny_experiment), "--ensemble", str(kept + 1), "--images", str(images),
                 "--out", str(out)]) == 2
    assert f"--ensemble {kept + 1}: the experiment kept its {kept} best trials" in capsys.readouterr().err


def test_a_bad_external_folder_stops_the_search_before_anything_is_written(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    from polyp_ray.search import main

    empty = tmp_path / "elsewhere"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(empty / "images" / "a.png")
    job = write_job(tmp_path, "ext", tmp_path / "experiments",
                    data={"external_tests": {"gone": str(tmp_path / "missing"), "half": str(empty)}})
    assert main(["--job", str(job)]) == 2
    err = capsys.readouterr().err
    assert f"data.external_tests.gone: {tmp_path / 'missing'}: dataset folder not found" in err
    assert f"data.external_tests.half: {empty / 'masks'}: empty folder" in err
    assert "Traceback" not in err and not (tmp_path / "experiments").exists()


def test_the_literature_metrics_and_failure_rates_are_scored_on_every_set(tiny_experiment: Path) -> None:
    body, scored = _body(tiny_experiment), _scored(tiny_experiment)
    winner = next(r for r in body["rows"] if r["label"] == "winner")
    first = scored.iloc[0]
    for name in ("s_alpha", "wf_beta", "mean_e_phi", "max_e_phi", "mae"):
        # One protocol: the generalisation step's test figures are the trial's own test evaluation's.
        assert winner["sets"]["test"][name] == pytest.approx(float(first[f"test_{name}"]), abs=1e-5)
    for name, entry in winner["sets"].items():
        dice = np.array(winner["per_image_dice"][name])
        assert entry["median"] == pytest.approx(np.median(dice), abs=1e-5)
        assert entry["failures"] == pytest.approx(np.mean(dice < 0.1))
        assert 0.0 <= entry["mae"] <= 1.0 and 0.0 <= entry["empty_predictions"] <= 1.0


def test_a_search_on_two_sources_trains_on_their_union_and_reports_each_test_split(tiny_experiment: Path) -> None:
    dataset = json.loads((tiny_experiment / OURS / "dataset.json").read_text())
    names = [s["name"] for s in dataset["sources"]]
    assert names == ["synthetic-n24-s0", "synthetic-n24-s1"] and dataset["n_pairs"] == 48
    for split in ("train", "val", "test"):
        assert {stem.split("/")[0] for stem in dataset["split"][split]} == set(names), split
    body, scored = _body(tiny_experiment), _scored(tiny_experiment)
    for name in names:
        part = body["sets"][f"{name} test"]
        assert part["part_of"] == "test" and part["n_images"] == sum(
            s.startswith(f"{name}/") for s in dataset["split"]["test"])
    winner = str(scored.iloc[0]["trial_id"])
    test = json.loads((tiny_experiment / OURS / "trials" / winner / "test_metrics.json").read_text())
    row = next(r for r in body["rows"] if r["label"] == "winner")
    for name in names:  # the winner's own test evaluation per source = the generalisation column of that source
        assert row["sets"][f"{name} test"]["dice"] == pytest.approx(test["by_source"][name]["dice"], abs=1e-5)
    # The headline's worst external set is a real external one, not a source's test split.
    html = (tiny_experiment / OURS / "report.html").read_text()
    assert "worst external set, <b>other_centre</b>" in html
