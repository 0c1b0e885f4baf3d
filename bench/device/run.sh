#!/usr/bin/env bash
# The one command for a lent GPU machine (bench/device/README.md): install the carried wheels, then run
# the check with its figures under $OUT. Run from the repository root, with .whl carried.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "${OUT:-/tmp}/nvidia-smi.txt"
nproc; python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
python3 bench/device/gpu_check.py --out "${OUT:-/tmp/gpu_check}" "$@"
