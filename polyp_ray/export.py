"""``python -m polyp_ray.export``: a trained model as a TensorFlow SavedModel and a TFLite file, for
serving (TF Serving, ``tf.saved_model.load``) and for phones or edge devices (the TFLite interpreter).

    python -m polyp_ray.export --experiment experiments/kvasir-20261126-0130 --out exported/
    python -m polyp_ray.export --model runs/debug/best.keras --out exported/

Writes into ``--out``: ``saved_model/`` (signature ``serving_default``, input ``image``),
``model.tflite`` and ``export.json`` (input size, threshold, where the model came from, and how far each
export's output is from the Keras model's on a random image). Both exports take float32 RGB in [0, 1],
N x S x S x 3 (the model's own preprocessing is inside), and return polyp probabilities N x S x S x 1
at the model's input size: resize each image to S first and the probabilities back to its own size, then
threshold (``python -m polyp_ray.predict`` does exactly that). A model trained in mixed precision is
exported in float32.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from polyp_ray.errors import ConfigError, help_text, run_cli
from polyp_ray.predict import load_predictor
from polyp_ray.tf_quiet import quiet_unless, start_tensorflow

SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"
MANIFEST = "export.json"
# Outputs are probabilities: beyond this an export is not the model (float32 reordering stays ~1e-5).
TOLERANCE = 1e-3


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_cli(lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    taken = [out / name for name in (SAVED_MODEL, TFLITE, MANIFEST) if (out / name).exists()]
    if taken:  # never mix two models' files in one folder
        raise ConfigError(f"--out {out}: already holds {taken[0].name}; give an empty or new folder")
    # The model and threshold exactly as predict finds them (an experiment's winner, or a model file).
    start_tensorflow(args.verbose)
    predictor = load_predictor(args.experiment, args.model, None)
    threshold = predictor.threshold
    with quiet_unless(args.verbose):  # the SavedModel and TFLite converters log as they go
        manifest = export_model(float32_model(predictor.model), out)
    manifest.update(source=str(predictor.source), threshold=threshold)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    gaps = manifest["max_abs_difference"]
    print(f"saved model: {out / SAVED_MODEL}\ntflite: {out / TFLITE}\n"
          f"input: float32 RGB in [0, 1], N x {manifest['image_size']} x {manifest['image_size']} x 3; "
          f"threshold {threshold:g}; max |difference| from Keras on a random image: "
          f"SavedModel {gaps['saved_model']:.1e}, TFLite {gaps['tflite']:.1e}")
    if max(gaps.values()) > TOLERANCE:
        print(f"warning: an export differs from the Keras model by more than {TOLERANCE:g}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m polyp_ray.export", description=help_text(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--experiment", metavar="DIR", help="an experiment folder: exports its winner")
    source.add_argument("--model", metavar="MODEL.keras", help="a saved Keras model (.keras or checkpoint folder)")
    parser.add_argument("--out", required=True, metavar="FOLDER", help="where saved_model/ and model.tflite go")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TensorFlow's start-up and converter lines")
    return parser


def float32_model(model: Any) -> Any:
    """``model`` itself, or for a mixed-precision one the same weights in a float32 copy: TFLite has no
    bfloat16 kernels (conversion fails) and float16 would run on CPUs emulated, slower than float32."""
    config = model.get_config()
    if "mixed_" not in json.dumps(config):
        return model
    from polyp_ray.models.keras_objects import register

    register()  # our layers, by their registered names
    copy = type(model).from_config(_float32_config(config))
    copy.set_weights(model.get_weights())  # variables are float32 under every mixed policy already
    return copy


def _float32_config(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and \
                str(node.get("config", {}).get("name", "")).startswith("mixed_"):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {key: _float32_config(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32_config(value) for value in node]
    if isinstance(node, str) and node.startswith("mixed_"):  # a policy given by name
        return "float32"
    return node


def export_model(model: Any, out: Path) -> dict[str, Any]:
    """Write ``out/saved_model`` and ``out/model.tflite``; return what ``export.json`` records."""
    import tensorflow as tf

    out.mkdir(parents=True, exist_ok=True)
    saved = out / SAVED_MODEL
    partial = out / f".{SAVED_MODEL}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.export(str(partial), format="tf_saved_model", verbose=False)
    # The TFLite file is converted from the SavedModel just written, so the two run the same graph.
    tflite = tf.lite.TFLiteConverter.from_saved_model(str(partial)).convert()
    partial.replace(saved)  # a half-written export is never where a server would look
    (out / TFLITE).write_bytes(tflite)
    size = int(model.input_shape[1])
    probe = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    expected = np.asarray(model(probe, training=False), dtype=np.float32)
    gaps = {"saved_model": _gap(expected, run_saved_model(saved, probe)),
            "tflite": _gap(expected, run_tflite(out / TFLITE, probe))}
    return {"image_size": size, "input": "float32 RGB in [0, 1], N x S x S x 3",
            "output": "polyp probability, N x S x S x 1", "max_abs_difference": gaps}


def _gap(expected: np.ndarray, got: np.ndarray) -> float:
    return float(np.abs(expected - got).max())


def run_saved_model(path: Path, images: np.ndarray) -> np.ndarray:
    """Probabilities from an exported SavedModel, through its serving signature as a server calls it."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    (output,) = serve(tf.constant(images, tf.float32)).values()
    return output.numpy()


def run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    """Probabilities from an exported TFLite file, one image per invocation (its batch is fixed at 1)."""
    import tensorflow as tf

    with warnings.catch_warnings():  # its deprecation notice (LiteRT's ai_edge_litert) is no news to our users
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in images:
        interpreter.set_tensor(source["index"], image[None].astype(np.float32))
        interpreter.invoke()
        results.append(interpreter.get_tensor(target["index"])[0])
    return np.stack(results)


if __name__ == "__main__":
    sys.exit(main())
