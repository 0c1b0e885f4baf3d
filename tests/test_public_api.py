"""The curated public API: five names, importable from the package, without loading TensorFlow or Ray
until one is used."""

import subprocess
import sys

import polyp_ray


def test_the_public_names_resolve_to_the_real_functions() -> None:
    from polyp_ray.models.registry import build_model
    from polyp_ray.report import build_report
    from polyp_ray.trial import run_trial

    assert polyp_ray.__all__ == ["build_model", "build_report", "load_model", "run_search", "run_trial"]
    assert polyp_ray.build_model is build_model and polyp_ray.run_trial is run_trial
    assert polyp_ray.build_report is build_report
    assert callable(polyp_ray.load_model) and callable(polyp_ray.run_search)


def test_importing_the_package_loads_neither_tensorflow_nor_ray() -> None:
    code = "import sys, polyp_ray; print(sorted(m for m in ('tensorflow', 'ray', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_search_driver_loads_no_tensorflow() -> None:
    # TensorFlow's start-up lines (a CUDA probe error on every machine without a GPU) belong in the trials'
    # logs: the driver loads TensorFlow only for the report's gallery, quietly.
    code = ("import sys, polyp_ray.search, polyp_ray.tuning, polyp_ray.tuning.finish; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_keras_load_model_opens_our_models_after_import_polyp_ray(tmp_path) -> None:
    # A compiled VGG16-U-Net: our preprocessing layer, fused BatchNorm, BCE+Dice loss and our schedule.
    import numpy as np

    from polyp_ray.losses import bce_dice_loss
    from polyp_ray.models import build_model
    from polyp_ray.schedules import cosine_adam

    model = build_model("vgg16_unet", 32, 4)
    model.compile(optimizer=cosine_adam(1e-3, 10), loss=bce_dice_loss)
    model.optimizer.build(model.trainable_variables)  # Adam's slots saved with the model, as a trial's are
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", model.predict(x, verbose=0))
    load = ("m = keras.models.load_model(sys.argv[1] + '/model.keras'); x = np.load(sys.argv[1] + '/x.npy'); "
            "np.testing.assert_allclose(m.predict(x, verbose=0), np.load(sys.argv[1] + '/expected.npy'), atol=1e-6); "
            "print(type(m.optimizer.learning_rate).__name__, m.loss.__name__)")
    for imports in ("import sys, numpy as np, polyp_ray, keras", "import sys, numpy as np, keras, polyp_ray"):
        done = subprocess.run([sys.executable, "-c", f"{imports}; {load}", str(tmp_path)], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split()[-1] == "bce_dice_loss", done.stdout
