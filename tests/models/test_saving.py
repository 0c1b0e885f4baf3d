import keras
import numpy as np

from polyp_ray.models import build_model
from polyp_ray.models.saving import checkpoint_model, export_archive, load_model, save_checkpoint_model


def test_a_checkpoint_and_its_exported_archive_predict_like_the_model(tmp_path) -> None:
    model = build_model("unet", 32, 4)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    model.fit(x, (x[..., :1] > 0.5).astype(np.float32), epochs=1, verbose=0)  # moves weights and BN stats
    expected = model.predict(x, verbose=0)
    save_checkpoint_model(model, tmp_path)
    export_archive(tmp_path, tmp_path / "best.keras")
    assert not (tmp_path / "best.keras.partial").exists()
    for path in (checkpoint_model(tmp_path), tmp_path / "best.keras"):
        loaded = load_model(path)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)


def test_a_checkpoint_from_before_the_folder_format_still_loads_and_exports(tmp_path) -> None:
    model = build_model("unet", 32, 4)
    model.save(tmp_path / "model.keras")  # what checkpoints held before
    assert checkpoint_model(tmp_path) == tmp_path / "model.keras"
    export_archive(tmp_path, tmp_path / "best.keras")
    assert (tmp_path / "best.keras").read_bytes() == (tmp_path / "model.keras").read_bytes()
    assert load_model(checkpoint_model(tmp_path)).count_params() == model.count_params()
