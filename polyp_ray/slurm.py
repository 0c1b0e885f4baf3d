"""``python -m polyp_ray.slurm``: a search as one Slurm batch job (polyp_ray/launch/slurm.py, docs/slurm.md)."""

import sys

from polyp_ray.launch.slurm import main

if __name__ == "__main__":
    sys.exit(main())
