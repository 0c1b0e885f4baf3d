"""``python -m polyp_ray.export``: the SavedModel and the TFLite file compute what the Keras model does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyp_ray.export import main
from tests.conftest import write_pair

# TensorFlow's own interpreter is what the test checks against; its deprecation notice is not a finding.
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")


def _image(tmp_path: Path, size: int) -> np.ndarray:
    """One synthetic polyp-like RGB image as the models take it: 1 x size x size x 3 in [0, 1]."""
    image_path, _ = write_pair(tmp_path / "img", "images", "masks", "probe", size=(size + 7, size - 5), seed=3)
    image = Image.open(image_path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return (np.asarray(image, dtype=np.float32) / 255.0)[None]


def _saved_model_output(path: Path, image: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    (output,) = serve(tf.constant(image)).values()
    return output.numpy()


def _tflite_output(path: Path, image: np.ndarray) -> tuple[np.ndarray, dict]:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(source["index"], image)
    interpreter.invoke()
    return interpreter.get_tensor(target["index"]), source


def _spread_the_output(model, image: np.ndarray) -> None:
    """Give the final 1x1 convolution (before the sigmoid) a seeded random kernel, scaled on ``image``.

    A freshly initialised model answers about 0.5 everywhere (its decoder's features are ~1e-3), and
    comparing exports against a near-constant map checks little; with these logits (mean 0, std 2 on the
    image) the probabilities spread across (0, 1).
    """
    import keras

    head = [layer for layer in model.layers if getattr(layer, "kernel", None) is not None][-1]
    kernel_shape = tuple(head.kernel.shape)
    assert kernel_shape[:2] == (1, 1) and kernel_shape[-1] == 1 and head.use_bias, kernel_shape
    features = np.asarray(keras.Model(model.inputs, head.input)(image, training=False), dtype=np.float64)
    kernel = np.random.default_rng(0).standard_normal(kernel_shape)
    logits = features @ kernel[0, 0]
    scale = 2.0 / logits.std()
    head.set_weights([(kernel * scale).astype(np.float32), np.array([-logits.mean() * scale], np.float32)])


@pytest.mark.parametrize(("size", "encoder"), [(32, "conv"), (64, "mobilenetv2")])
def test_both_exports_match_the_keras_model(size: int, encoder: str, tmp_path: Path) -> None:
    import keras

    from polyp_ray.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model("unet", size, 4, encoder=encoder)  # mobilenetv2: keras.applications, preprocessing inside
    image = _image(tmp_path, size)
    _spread_the_output(model, image)
    path = tmp_path / "model.keras"
    model.save(path)
    out = tmp_path / "out"
    assert main(["--model", str(path), "--out", str(out)]) == 0
    expected = np.asarray(model(image, training=False))
    assert expected.shape == (1, size, size, 1)
    assert expected.std() > 0.1, "a near-constant output would make the comparison meaningless"
    np.testing.assert_allclose(_saved_model_output(out / "saved_model", image), expected, atol=1e-5)
    lite, source = _tflite_output(out / "model.tflite", image)
    assert source["dtype"] == np.float32 and tuple(source["shape"]) == (1, size, size, 3)
    np.testing.assert_allclose(lite, expected, atol=1e-4)
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["image_size"] == size and manifest["threshold"] == 0.5
    assert max(manifest["max_abs_difference"].values()) < 1e-4


def test_experiment_mode_exports_the_winner_with_its_threshold(tmp_path: Path) -> None:
    # Run as a user runs it, in a fresh process: its console holds no TensorFlow C++ line either.
    import subprocess
    import sys

    from polyp_ray.models import build_model
    from tests.console import tf_cpp_lines

    best = tmp_path / "exp" / "polyp_ray" / "best"
    best.mkdir(parents=True)
    model = build_model("encoder_decoder", 32, 4)
    model.save(best / "model.keras")
    (best / "trial_config.json").write_text(json.dumps({"image_size": 32, "threshold": 0.3}))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "polyp_ray.export", "--experiment", str(tmp_path / "exp"),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["threshold"] == 0.3 and manifest["source"] == str(best / "model.keras")
    assert "threshold 0.3" in proc.stdout
    assert tf_cpp_lines(proc.stdout + proc.stderr) == [] and proc.stderr == "", proc.stderr[-2000:]
    image = _image(tmp_path, 32)
    np.testing.assert_allclose(_tflite_output(out / "model.tflite", image)[0],
                               np.asarray(model(image, training=False)), atol=1e-4)


def test_a_mixed_precision_model_is_exported_in_float32(tmp_path: Path) -> None:
    # TFLite has no bfloat16 kernels: exported as trained, the conversion fails.
    import keras

    from polyp_ray.export import float32_model
    from polyp_ray.models import build_model

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = build_model("unet", 32, 4)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    copy = float32_model(mixed)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), mixed.get_weights(), strict=True))
    path = tmp_path / "mixed.keras"
    mixed.save(path)
    out = tmp_path / "out"
    assert main(["--model", str(path), "--out", str(out)]) == 0
    image = _image(tmp_path, 32)
    lite, source = _tflite_output(out / "model.tflite", image)
    assert source["dtype"] == np.float32
    np.testing.assert_allclose(lite, np.asarray(copy(image, training=False)), atol=1e-4)
    # bfloat16 keeps 8 bits of mantissa: the float32 export is the trained model up to that rounding
    np.testing.assert_allclose(lite, np.asarray(mixed(image, training=False), dtype=np.float32), atol=0.05)


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("not a model")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "model.tflite").write_bytes(b"")
    cases = [
        (["--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "o1")],
         "missing.keras: model file not found"),
        (["--experiment", str(tmp_path), "--out", str(tmp_path / "o2")], "is this a finished experiment folder"),
        (["--model", str(not_a_model), "--out", str(tmp_path / "o3")], "notes.keras: not a loadable Keras model"),
        (["--model", str(not_a_model), "--out", str(taken)], "already holds model.tflite"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not (tmp_path / "o3").exists(), "a failed export leaves no folder"

