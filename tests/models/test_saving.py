import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from polyp_ray.models import build_model
from polyp_ray.models.saving import checkpoint_model, export_archive, load_model, save_checkpoint_model
from tests.models.test_encoders import ALL  # every encoder with layers of its own


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


def test_every_encoder_loads_in_a_fresh_process(tmp_path) -> None:
    """A Ray worker or ``predict`` imports none of our model code before loading a checkpoint: every
    custom layer must still be found (issue 10: "Could not locate class 'VGG16Preprocess'")."""
    x = np.random.default_rng(0).random((1, 64, 64, 3), dtype=np.float32)
    cases = [("unet", e) for e in ALL] + [("encoder_decoder", "mobilenetv2"), ("vgg16_unet", "conv")]
    for model_name, encoder in cases:
        folder = tmp_path / f"{model_name}-{encoder}"
        model = build_model(model_name, 64, 4, encoder=encoder)
        save_checkpoint_model(model, folder)
        np.save(folder / "expected.npy", keras.ops.convert_to_numpy(model(x, training=False)))
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, pathlib, numpy as np\n"
        "from polyp_ray.models.saving import load_model\n"
        "root = pathlib.Path(sys.argv[1]); x = np.load(root / 'x.npy')\n"
        "for folder in sorted(p for p in root.iterdir() if p.is_dir()):\n"
        "    out = np.asarray(load_model(folder / 'model')(x, training=False))\n"
        "    np.testing.assert_allclose(out, np.load(folder / 'expected.npy'), atol=1e-6)\n"
        "    print(folder.name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == sorted(f"{m}-{e}" for m, e in cases)


def test_the_ensembles_copy_of_the_winner_is_one_file_on_disk(tmp_path: Path) -> None:
    from polyp_ray.models.saving import CHECKPOINT_MODEL, export_archive, share_if_identical

    checkpoint = tmp_path / "checkpoint"
    (checkpoint / CHECKPOINT_MODEL).mkdir(parents=True)
    (checkpoint / CHECKPOINT_MODEL / "model.weights.h5").write_bytes(bytes(range(256)) * 64)
    best, member, other = tmp_path / "best.keras", tmp_path / "1-t.keras", tmp_path / "2-u.keras"
    export_archive(checkpoint, best)
    export_archive(checkpoint, member)  # the same checkpoint, archived twice: the same bytes
    assert share_if_identical(member, best) and member.stat().st_ino == best.stat().st_ino
    (checkpoint / CHECKPOINT_MODEL / "model.weights.h5").write_bytes(b"another model")
    export_archive(checkpoint, other)
    assert not share_if_identical(other, best) and other.stat().st_ino != best.stat().st_ino
