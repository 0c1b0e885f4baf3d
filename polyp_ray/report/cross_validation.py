"""Two views of how sure the search's pick is: "Is the pick real?" (a bootstrap over the validation images
of the top-k trials' per-image scores) and, where the job asked for it, the cross-validation table
(cross_validation.json: the top-k retrained on grouped folds of train+val, polyp_ray/cross_validation.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from polyp_ray.cross_validation import pick_sentence
from polyp_ray.evaluation import VAL_PER_IMAGE
from polyp_ray.report.experiment import Experiment, read_table_body
from polyp_ray.report.markup import esc, fmt, note
from polyp_ray.report.sections import caption
from polyp_ray.report.table import ci
from polyp_ray.stats import BOOTSTRAP_RESAMPLES, Interval, winner_stays_first
from polyp_ray.strategy_config import CrossValidationConfig

STAYS_FIRST = 0.7  # below this share of resamples the split cannot tell the top-k apart
PER_IMAGE = ("dice", "iou")  # the validation metrics whose per-image scores each checkpoint keeps

CAPTION = (
    "Each of the top-k configurations by validation, retrained for the job's full epochs on each fold's "
    "training part (folds of the train+val pool, near-duplicates and video neighbours kept in one fold) and "
    "scored on the fold it did not see, by the same original-resolution protocol as validation; the fold "
    "models are scored as their training ends, so no held-out fold chose an epoch. Mean ± standard deviation "
    "over folds. Test: each fold model's mean per-image Dice, averaged over folds, and the fold ensemble's "
    "(the mean probability of the K fold models) with its 95% bootstrap CI over test images."
)


def top_k(exp: Experiment) -> int:
    keys = exp.job.get("cross_validation")
    default = CrossValidationConfig.top_k
    return int(keys.get("top_k", default)) if isinstance(keys, dict) else default


def pick_real(exp: Experiment) -> str:
    """How often the validation winner stays first among the top-k when the validation images are resampled."""
    name = exp.metric.removeprefix("val_")
    if name not in PER_IMAGE:
        return note(f"Not computed: the search ranks by {exp.metric}, and its per-image validation scores are "
                    f"kept for {' and '.join(PER_IMAGE)} only.")
    ids = [str(t) for t in exp.scored_trials()["trial_id"]]
    if len(ids) < 2:
        return "<p>Fewer than two trials have a validation score: there is no pick to doubt.</p>"
    kept: dict[str, dict[str, Any]] = {t: exp.tests.get(t, {}).get(VAL_PER_IMAGE) or {} for t in ids}
    winner = kept[ids[0]]
    if not winner:
        return note(f"Not computed: the winner's test_metrics has no per-image validation scores ({VAL_PER_IMAGE}; "
                    "a search from before they were kept, or its checkpoint could not be scored).")
    top = [t for t in ids if kept[t] and kept[t]["stems"] == winner["stems"]][:top_k(exp)]
    scores = np.array([kept[t][name] for t in top], dtype=np.float64)
    share = winner_stays_first(scores, exp.maximise)
    text = (f"<p>Resampling the {scores.shape[1]} validation images ({BOOTSTRAP_RESAMPLES:,} bootstrap resamples, "
            f"per-image {esc(name)} of each trial's best checkpoint), the validation winner <b>{esc(ids[0])}</b> "
            f"stays first among the top {len(top)} ({esc(', '.join(top))}) in <b>{share:.0%}</b> of resamples.</p>")
    if len(top) < 2:
        return text
    if share >= STAYS_FIRST:
        return text + ('<p class="verdict yes"><b>A clear pick:</b> another draw of validation images would '
                       "most likely have picked the same trial.</p>")
    ran = exp.layout.cross_validation.is_file()
    where = ("the cross-validation below ranks them on grouped folds instead" if ran else
             f"set <code>cross_validation: {{folds: 5, top_k: {len(top)}}}</code> in the job to retrain them on "
             "grouped folds of train+val and pick by the fold mean (docs/generalisation.md)")
    return text + (f'<p class="verdict no"><b>The split cannot tell them apart:</b> below {STAYS_FIRST:.0%}, the '
                   f"pick is partly the luck of which images landed in validation; {where}.</p>")


def load(exp: Experiment) -> dict[str, Any] | None:
    return read_table_body(exp.layout.cross_validation, "configs")


def wanted(exp: Experiment) -> bool:
    """The section is shown where the job asked for cross-validation or the experiment holds its results."""
    return bool(exp.job.get("cross_validation")) or exp.layout.cross_validation.is_file()


def section(exp: Experiment) -> str:
    body = load(exp)
    if body is None:
        return note(f"The job asked for cross-validation, but the search wrote no readable "
                    f"{exp.layout.cross_validation.name} (it failed: see the search's console).")
    head = (f"<tr><th>trial</th><th>validation {esc(body.get('metric', ''))}</th><th>{esc(body.get('folds', '?'))} "
            "folds</th><th>fold mean ± sd</th><th>fold models' test Dice</th><th>fold ensemble's test Dice</th></tr>")
    rows = "".join(_row(entry, body.get("winner")) for entry in body["configs"])
    sizes = ", ".join(f"{s.get('held_out', '?')}" for s in body.get("fold_sizes") or [])
    return (f'<table class="plain"><thead>{head}</thead><tbody>{rows}</tbody></table>'
            + caption(CAPTION + (f" Held-out images per fold: {esc(sizes)}." if sizes else ""))
            + f'<p class="verdict {"no" if body.get("changed") else "yes"}">{esc(pick_sentence(body))}</p>')


def _row(entry: dict[str, Any], winner: str | None) -> str:
    trial = esc(entry.get("trial_id", "?"))
    first = f"<td>{'<b>' + trial + '</b>' if entry.get('trial_id') == winner else trial}</td>"
    first += f'<td class="num">{fmt(_num(entry.get("validation")))}</td>'
    if "error" in entry:
        return f'<tr>{first}<td colspan="4"><small class="error">failed: {esc(entry["error"])}</small></td></tr>'
    folds = " · ".join(fmt(s) for s in entry.get("fold_scores") or [])
    tests = entry.get("fold_test_dice") or []
    test = entry.get("ensemble_test") or {}
    interval = Interval(_num(test.get("dice")), _num(test.get("dice_low")), _num(test.get("dice_high")),
                        int(test.get("n") or 0))
    spread = f"{fmt(_num(entry.get('mean')))} ± {fmt(_num(entry.get('std')))}"
    return (f'<tr>{first}<td>{folds}</td><td class="num">{spread}</td>'
            f'<td class="num">{fmt(float(np.mean(tests)) if tests else np.nan)}</td><td class="num">{ci(interval)}</td>'
            "</tr>")


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)
