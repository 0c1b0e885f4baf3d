"""The page's sections, each a function from the experiment's data to an HTML fragment.

Strings from the experiment reach markup only through ``esc`` (markup.py) or figures.py.
"""

from __future__ import annotations

import json
import math

from polyp_ray.data.dataset import none_grouped
from polyp_ray.report.comparison import Ranking, Row
from polyp_ray.report.experiment import Experiment
from polyp_ray.report.gallery import Case, Gallery
from polyp_ray.report.importance import SAMPLE_SEED, Importance
from polyp_ray.report.markup import data_uri, esc, fmt, key_values, note, pre
from polyp_ray.report.table import ci
from polyp_ray.stats import ALPHA, Interval

# The notebook's reported 2-class mean IoU (CVC-ColonDB; IoU pooled per test batch of 4, averaged over batches).
NOTEBOOK = (("unet", "U-Net", 0.66), ("vgg16_unet", "VGG16-U-Net", 0.48))
SMALLEST_TESTABLE = 6  # a two-sided exact Wilcoxon test cannot reach p < 0.05 on fewer pairs

NOTEBOOK_CAPTION = (
    "The notebook's figures were measured on CVC-ColonDB with a 2-class IoU (background included) pooled "
    "over each test batch of 4, not on this dataset and split: they are shown for orientation, not as a "
    "like-for-like comparison. Per-image Dice (the table above) is the literature's protocol."
)
GALLERY_LEGEND = (
    'Each strip: image | truth (green) | prediction: <span class="hit">green</span> found, '
    '<span class="fp">red</span> false alarm, <span class="fn">blue</span> missed. '
    "Dice is the test evaluation's."
)


def caption(text: str) -> str:
    """``text`` is our own markup, never the experiment's."""
    return f'<p class="caption">{text}</p>'


def header(exp: Experiment, headline: str) -> str:
    data = exp.dataset
    counts = exp.trials["status"].value_counts().to_dict() if "status" in exp.trials else {}
    done = ", ".join(f"{n} {esc(s)}" for s, n in counts.items())
    test_images = len((data.get("split") or {}).get("test", []))
    lines = [f"<h1>polyp-ray report: {esc(exp.name)}</h1>",
             f"<p>Job <b>{esc(exp.job.get('name', '?'))}</b>: {len(exp.trials)} trials ({done}), selected by "
             f"validation {esc(exp.metric)} ({esc(exp.job.get('mode', 'max'))}). Dataset "
             f"<code>{esc(data.get('root', '?'))}</code>: {esc(data.get('n_pairs', '?'))} pairs, "
             f"{_grouping(data)}, {test_images} test images. Scores are per-image Dice/IoU at each "
             "image's original resolution (probabilities resized to the original mask), the same truth "
             "for every trial.</p>"]
    lines.append(headline)
    return "".join(lines)


GROUPED_BY = {"near-duplicates": "near-duplicate images joined",
              "near-duplicates + consecutive frames": "near-duplicates and consecutive video frames joined",
              "csv": "from the groups CSV"}


def _grouping(data: dict) -> str:
    """How the split kept near-duplicates together (dataset.json), for the dataset line."""
    groups = data.get("n_groups") or 0
    if not groups:
        return "split image by image (no grouping)"
    twins = len(data.get("cross_split_twins") or [])
    frames = len(data.get("cross_split_neighbours") or [])
    leak = f", {twins} val/test image(s) with a near-duplicate in training" if twins else ""
    leak += f", {frames} val/test frame(s) with their video neighbour in training" if frames else ""
    source = data.get("group_source", "?")
    if none_grouped(data.get("largest_group") or 0, source):
        return f"split image by image: no near-duplicates or video frames found among {esc(groups)} images{leak}"
    return (f"split in {esc(groups)} groups kept whole ({esc(GROUPED_BY.get(source, source))}; largest "
            f"{esc(data.get('largest_group', '?'))} images){leak}")


def notes(items: list[str]) -> str:
    return "".join(note(item) for item in items)


def notebook(families: list[Row]) -> str:
    ours = {r.family: r for r in families}
    rows = []
    for family, name, value in NOTEBOOK:
        mine = ours.get(family)
        measured = f"{fmt(mine.test_miou)} (trial {esc(mine.trial_id)})" if mine else "not in this search"
        rows.append(f"<tr><td>{esc(name)}</td><td>{value:.2f}</td><td>{measured}</td></tr>")
    head = "<tr><th>model</th><th>the notebook's figure</th><th>this search: test 2-class mIoU</th></tr>"
    return f'<table class="plain"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>' + caption(
        NOTEBOOK_CAPTION)


def ranking(result: Ranking, tests: dict[str, Interval]) -> str:
    """A plain sentence: can the best two families be told apart on the test images?"""
    if not result.families:
        return "<p>No trial finished with a validation score, so there is no ranking.</p>"
    if len(result.families) == 1:
        return (f"<p>Only one model family (<b>{esc(result.families[0])}</b>) was searched: there is no "
                "ranking between families to test.</p>")
    a, b = result.families
    ta, tb = result.best_trials[a], result.best_trials[b]
    intro = (f"<p>Best two families by validation score: <b>{esc(a)}</b> (trial {esc(ta)}, test Dice "
             f"{ci(tests[ta])}) and <b>{esc(b)}</b> (trial {esc(tb)}, test Dice {ci(tests[tb])}).</p>")
    test = result.test
    if test is None or test.p_value is None:
        why = test.reason if test else "no per-image scores"
        return intro + (f'<p class="verdict no"><b>Not distinguishable:</b> {esc(why)}, so the two cannot be '
                        "told apart on this test split.</p>")
    return intro + _verdict(a, b, test.n, test.mean_difference, test.p_value)


def _verdict(a: str, b: str, n: int, diff: float, p: float) -> str:
    stats = (f"<p>Paired Wilcoxon signed-rank test over the same {n} test images (per-image Dice, "
             f"{esc(a)} − {esc(b)}): mean difference {diff:+.3f}, p = {p:.3g}.</p>")
    if p < ALPHA:
        flipped = "" if diff > 0 else f" Note that on the test images {esc(b)} scores higher."
        return stats + (f'<p class="verdict yes"><b>Distinguishable:</b> the difference between {esc(a)} and '
                        f"{esc(b)} is unlikely to be chance (p &lt; {ALPHA}).{flipped}</p>")
    small = ""
    if n < SMALLEST_TESTABLE:
        small = f" With only {n} images no difference could reach p &lt; {ALPHA}."
    return stats + (f'<p class="verdict no"><b>Not distinguishable:</b> on these test images {esc(a)} and '
                    f"{esc(b)} cannot be told apart (p ≥ {ALPHA}); treat their ranking as a tie.{small}</p>")


def importance(result: Importance, figure: str) -> str:
    left = ""
    if result.left_out:
        left = note("Left out (conditional, not sampled by every trial): " + ", ".join(result.left_out))
    if not result.scores:
        return f"<p>Hyperparameter importance not computed: {esc(result.reason)}.</p>{left}"
    if result.sampled:
        over = (f"{result.used:,} of the {result.scored:,} scored trials: the best {result.kept_best:,} by the "
                f"metric and a random {result.used - result.kept_best:,} of the rest (seed {SAMPLE_SEED}; fANOVA's "
                "cost grows faster than the number of trials)")
    else:
        over = f"all {result.used:,} scored trials"
    return figure + left + caption(f"fANOVA (Optuna) over the best validation scores of {over}, read from "
                                   f"{esc(result.source)}. With few trials this is a rough guide, not a "
                                   "measurement.")


def gallery(result: Gallery, scatter: str) -> str:
    title = f"<p>Best model: trial <code>{esc(result.trial_id)}</code>, worst test images first.</p>"
    grids = ""
    for group, heading in (("worst", "Worst"), ("best", "Best"), ("shown", "Prediction strips")):
        cards = [c for c in result.cases if c.group == group]
        if cards:
            grids += f'<h3>{heading} {len(cards)}</h3><div class="gallery">{"".join(map(_card, cards))}</div>'
    for name, cases in result.external:
        cards = [c for c in cases if c.group == "worst"]
        if cards:
            grids += (f'<h3>Worst {len(cards)} on {esc(name)} (external)</h3>'
                      f'<div class="gallery">{"".join(map(_card, cards))}</div>')
    size = f"<h3>Dice against polyp size</h3>{scatter}" if scatter else ""
    return title + notes(result.notes) + (caption(GALLERY_LEGEND) if grids else "") + grids + size


def _card(case: Case) -> str:
    facts = f"Dice {fmt(case.dice)} · IoU {fmt(case.iou)} · polyp {_share(case.truth_fraction)} of the image"
    return (f'<figure class="case {esc(case.group)}"><img alt="{esc(case.stem)}" src="{data_uri(case.png)}">'
            f'<figcaption><span class="stem">{esc(case.stem)}</span><br>{facts}</figcaption></figure>')


def _share(fraction: float) -> str:
    return "–" if math.isnan(fraction) else f"{fraction:.1%}"


def reproducibility(exp: Experiment) -> str:
    data = exp.dataset
    split = data.get("split") or {}
    sizes = " / ".join(str(len(split.get(k, []))) for k in ("train", "val", "test"))
    facts = [("dataset root", data.get("root", "?")), ("layout", data.get("layout", "?")),
             ("files (image/mask pairs)", data.get("n_pairs", "?")),
             ("SHA-256 of stems, sizes and bytes", data.get("sha256", "?")),
             ("split seed", data.get("split_seed", "?")), ("split sizes (train / val / test)", sizes),
             ("groups CSV", data.get("groups_csv") or "none"),
             ("groups (kept whole by the split)", f"{data.get('n_groups', 0)} from {data.get('group_source', '?')}, "
              f"largest {data.get('largest_group', 0)}")]
    job, space = (esc(p.relative_to(exp.path)) for p in (exp.layout.job, exp.layout.space))
    return (f"<h3>Command</h3>{pre(exp.command or f'({exp.layout.command.name} missing)')}"
            + caption("Run it from the folder it was run in; <code>--name</code> chooses the experiment "
                      f"folder's name. This page: <code>python -m polyp_ray.report {esc(exp.path)}</code>.")
            + f"<h3>Dataset</h3>{key_values(facts)}"
            f"<h3>Environment</h3>{key_values(list(exp.environment.items()))}"
            f"<h3>Job ({job})</h3>{pre(exp.job_text or '(missing)')}"
            f"<h3>Search space ({space})</h3>{pre(exp.space_text or '(missing)')}"
            f"<details><summary>Split stems</summary>{pre(json.dumps(split, indent=1))}</details>")
