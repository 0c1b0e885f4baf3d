"""``python -m polyp_ray.predict``: segment a folder of images with a trained model.

    python -m polyp_ray.predict --experiment experiments/kvasir-20261126-0130 --images new/ --out masks/
    python -m polyp_ray.predict --model runs/debug/best.keras --images new/ --out masks/

Each image is resized to the model's input size, predicted, and its probability map resized back to the
image's ORIGINAL size (bilinear) before thresholding, so ``<stem>_mask.png`` (0/255) and
``<stem>_overlay.png`` line up pixel for pixel with the input. With ``--experiment`` the search's winner
(``ExperimentLayout.best_model``) is used with its trial's image size and threshold; with ``--model`` the
size comes from the model's input shape and the threshold is 0.5 unless ``--threshold`` is given.

    python -m polyp_ray.predict --experiment experiments/kvasir-1 --ensemble 3 --tta --images new/ --out masks/

``--ensemble K`` averages the probabilities of the search's K best trials (kept in
``polyp_ray/ensemble/``, each at its own input size, averaged at the image's original size) and
``--tta`` adds each model's horizontally and vertically mirrored predictions, as the search's
generalisation table scored them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from polyp_ray.data.images import read_image
from polyp_ray.data.layouts import IMAGE_SUFFIXES
from polyp_ray.ensemble import Member
from polyp_ray.errors import ConfigError, DataError, help_text, one_line, run_cli
from polyp_ray.experiment import ExperimentLayout, read_trial_config
from polyp_ray.tf_quiet import start_tensorflow

BATCH = 8
OVERLAY = np.array([0, 220, 0], dtype=np.float32)  # polyp tint; the mask's outline is drawn stronger
OVERLAY_ALPHA = 0.45


@dataclass(frozen=True)
class Predictor:
    members: list[Member]  # one model, or an ensemble's; each keras.Model takes float [0, 1] RGB images
    threshold: float
    source: Path
    tta: bool = False

    @property
    def model(self) -> Any:
        return self.members[0].model

    @property
    def image_size(self) -> int:
        return self.members[0].image_size

    def summary(self) -> str:
        sizes = "/".join(str(s) for s in dict.fromkeys(m.image_size for m in self.members))
        models = f"an ensemble of {len(self.members)} models" if len(self.members) > 1 else "model"
        return (f"{models} {self.source}, input {sizes} px, threshold {self.threshold:g}"
                f"{', flip TTA' if self.tta else ''}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_cli(lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    images = list_images(Path(args.images))
    out = _output_folder(Path(args.out), Path(args.images))
    start_tensorflow(args.verbose)
    predictor = load_predictor(args.experiment, args.model, args.threshold, args.ensemble, args.tta)
    failed = predict_folder(predictor, images, out, args.batch_size)
    written = len(images) - len(failed)
    print(f"wrote {written} mask(s) and overlay(s) to {out} ({predictor.summary()})")
    return 2 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m polyp_ray.predict", description=help_text(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--experiment", metavar="DIR", help="an experiment folder: uses its best checkpoint")
    source.add_argument("--model", metavar="CHECKPOINT.keras", help="a saved Keras model")
    parser.add_argument("--images", required=True, metavar="FOLDER",
                        help=f"folder of images ({', '.join(IMAGE_SUFFIXES)})")
    parser.add_argument("--out", required=True, metavar="FOLDER", help="where the masks and overlays go")
    parser.add_argument("--threshold", type=float, help="probability above which a pixel is polyp "
                        "(default: the trial's threshold, or 0.5 with --model)")
    parser.add_argument("--ensemble", type=int, default=1, metavar="K",
                        help="with --experiment: average the K best trials (up to the job's ensemble_k)")
    parser.add_argument("--tta", action="store_true",
                        help="average each model over the image and its horizontal and vertical mirrors")
    parser.add_argument("--batch-size", type=int, default=BATCH,
                        help=f"images per prediction (default {BATCH})")
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's start-up lines")
    return parser


def list_images(folder: Path) -> list[Path]:
    """The folder's images, sorted; two files with one stem would write the same mask, so they are refused.

    Every entry named like an image is listed, a broken symbolic link or a folder named ``x.png`` too:
    reading it then fails with a line naming it, as training's validation does, instead of a silent skip.
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not images:
        raise DataError(f"{folder}: no images ({'/'.join(IMAGE_SUFFIXES)} files)")
    seen: dict[str, Path] = {}
    for path in images:
        if path.stem in seen:
            raise DataError(f"{path}: two files share the stem {path.stem!r} ({seen[path.stem].name}); "
                            "their masks would overwrite each other")
        seen[path.stem] = path
    return images


def _output_folder(out: Path, images: Path) -> Path:
    if out.resolve() == images.resolve():
        raise ConfigError(f"--out {out}: must differ from --images (masks would be read as images next time)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot create the folder ({err.strerror or err})") from None
    return out


def load_predictor(experiment: str | None, model_path: str | None, threshold: float | None,
                   ensemble: int = 1, tta: bool = False) -> Predictor:
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise ConfigError(f"--threshold {threshold}: must be in (0, 1)")
    if ensemble < 1:
        raise ConfigError(f"--ensemble {ensemble}: must be >= 1")
    if ensemble > 1:
        if not experiment:
            raise ConfigError("--ensemble: needs --experiment (the ensemble is a search's best trials)")
        return _ensemble_predictor(ExperimentLayout(Path(experiment).expanduser()), ensemble, threshold, tta)
    if experiment:
        layout = ExperimentLayout(Path(experiment).expanduser())
        config = read_trial_config(layout.best_config)
        model = _load_model(layout.best_model)
        chosen = threshold if threshold is not None else config.threshold
        return Predictor([Member(model, config.image_size)], chosen, layout.best_model, tta)
    path = Path(str(model_path)).expanduser()
    model = _load_model(path)
    return Predictor([Member(model, _input_size(model, path))], 0.5 if threshold is None else threshold, path, tta)


def _ensemble_predictor(layout: ExperimentLayout, k: int, threshold: float | None, tta: bool) -> Predictor:
    folder, manifest = layout.ensemble, layout.ensemble_manifest
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: not found; the search kept no ensemble (its job's ensemble_k was 1, "
                          "or fewer than 2 trials were scored)")
    body = _read_manifest(manifest)
    listed = body.get("members") or []
    if k > len(listed):
        raise ConfigError(f"--ensemble {k}: the experiment kept its {len(listed)} best trials ({manifest})")
    members = [Member(_load_model(folder / m["file"]), int(m["image_size"]), str(m["trial_id"]))
               for m in listed[:k]]
    chosen = threshold if threshold is not None else float(body.get("threshold", 0.5))
    return Predictor(members, chosen, folder, tta)


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: not found; is this a finished experiment folder?")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return body


def _load_model(path: Path) -> Any:
    if not path.exists():  # a .keras file, or a checkpoint's model folder
        raise ConfigError(f"{path}: model file not found")
    from polyp_ray.models.saving import load_model

    try:
        return load_model(path)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for a bad file; the user needs one line
        raise ConfigError(f"{path}: not a loadable Keras model ({one_line(err)})") from None


def _input_size(model: Any, path: Path) -> int:
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise ConfigError(f"{path}: expected a square RGB input (None, S, S, 3), the model takes {shape}")
    return int(shape[1])


def predict_folder(predictor: Predictor, images: list[Path], out: Path,
                   batch_size: int = BATCH) -> list[Path]:
    """Write every image's mask and overlay; return the images that could not be read (each reported)."""
    from tqdm import tqdm

    failed: list[Path] = []
    with tqdm(total=len(images), unit="image", desc="predicting", file=sys.stderr, disable=None) as bar:
        for batch in _batches(images, max(1, batch_size)):
            loaded = _read_batch(batch, failed, bar)
            if loaded:
                _predict_batch(predictor, loaded, out)
            bar.update(len(batch))
    return failed


def _batches(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _read_batch(batch: list[Path], failed: list[Path], bar: Any) -> list[tuple[Path, np.ndarray]]:
    loaded = []
    for path in batch:
        try:
            loaded.append((path, read_image(path)))
        except DataError as err:
            bar.write(f"error: {err}", file=sys.stderr)
            failed.append(path)
    return loaded


def _predict_batch(predictor: Predictor, loaded: list[tuple[Path, np.ndarray]], out: Path) -> None:
    from polyp_ray.ensemble import mean_original, member_probs

    per_member = []
    for member in predictor.members:
        size = member.image_size
        small = np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
                          for _, image in loaded])
        per_member.append(member_probs(member.model, small, predictor.tta, batch_size=len(loaded)))
    means = mean_original(per_member, [image.shape[:2] for _, image in loaded])
    for (path, image), prob in zip(loaded, means, strict=True):
        mask = full_size_mask(prob, image.shape[:2], predictor.threshold)
        Image.fromarray(mask).save(out / f"{path.stem}_mask.png")
        Image.fromarray(overlay(image, mask > 0)).save(out / f"{path.stem}_overlay.png")


def full_size_mask(prob: np.ndarray, shape: tuple[int, int], threshold: float) -> np.ndarray:
    """The probability map resized to (height, width) as the evaluation does, then thresholded (0/255)."""
    from polyp_ray.evaluation import upsample

    return np.where(upsample(prob, shape) > threshold, 255, 0).astype(np.uint8)


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the predicted polyp tinted and its border drawn solid."""
    out = image.astype(np.float32)
    out[mask] = (1 - OVERLAY_ALPHA) * out[mask] + OVERLAY_ALPHA * OVERLAY
    out[_border(mask)] = OVERLAY
    return out.astype(np.uint8)


def _border(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


if __name__ == "__main__":
    sys.exit(main())
