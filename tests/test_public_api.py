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
