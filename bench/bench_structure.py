"""What the literature's structure metrics (S_alpha, E_phi, F^w_beta, MAE via pysodmetrics) add to scoring
one validation split, against Dice/IoU from pixel counts, both at each image's original resolution.

    python bench/bench_structure.py [--data DIR] [--image-size 128] [--repeats 3]

No model is trained: each image's probability map is its truth shrunk to the trial's input size and
blurred (a plausible smooth map), because the metrics' cost depends on the image size, not on the model.
Prints the figures, the ratio last.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import default_kvasir_dir, machine_line, use_bench_cache  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_kvasir_dir())
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    use_bench_cache()

    import numpy as np
    from PIL import Image, ImageFilter

    from polyp_ray.config import DataConfig
    from polyp_ray.data.dataset import prepare_data
    from polyp_ray.evaluation import resized_maps, score_maps

    print(machine_line(), flush=True)
    data = prepare_data(DataConfig(path=args.data, val_fraction=0.15, test_fraction=0.15), args.image_size)
    val = data.splits["val"]
    truths = val.truths or []
    probs = np.stack([np.asarray(Image.fromarray(m[..., 0] * 255).filter(ImageFilter.GaussianBlur(3)),
                                 np.float32) / 255.0 for m in val.masks])[..., None]
    pixels = np.mean([t.size for t in truths])
    timings: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for structure in (False, True):
            started = time.perf_counter()
            _, scores = score_maps(resized_maps(probs, truths), truths, 0.5, structure)
            timings[structure].append(time.perf_counter() - started)
    cheap, full = min(timings[False]), min(timings[True])
    print(f"val split: {len(val)} images, mean {pixels / 1e6:.2f} Mpixel at original resolution; "
          f"maps at {args.image_size} px resized there")
    print(f"Dice/IoU from pixel counts: {cheap * 1e3:.0f} ms ({cheap / len(val) * 1e3:.2f} ms/image)")
    print(f"+ S_alpha, E_phi, F^w_beta, MAE: {full * 1e3:.0f} ms ({full / len(val) * 1e3:.1f} ms/image); "
          f"summary {', '.join(f'{k} {v:.3f}' for k, v in scores.summary().items())}")
    print(f"ratio (with structure / Dice only): {full / cheap:.1f}x, +{full - cheap:.2f} s per validation pass")


if __name__ == "__main__":
    main()
