import sys

from polyp_ray.report.cli import main

sys.exit(main())
