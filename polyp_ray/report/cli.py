"""``python -m polyp_ray.report EXPERIMENT_DIR [-o FILE]``: the experiment's report as one HTML file.

Without ``-o`` it rewrites the experiment's own report (``polyp_ray/report.html`` in the folder, the one the
README points to) and its copy in ``reports/<experiment name>.html`` here, as the search does at its end."""

from __future__ import annotations

import argparse

from polyp_ray.errors import help_text, run_cli
from polyp_ray.experiment import REPORT


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from polyp_ray.report.build import build_report, write_reports  # after argparse: --help stays instant

    def body() -> int:
        if args.output:
            written = [build_report(args.experiment, args.output, gallery=not args.no_gallery)]
        else:
            written = write_reports(args.experiment, gallery=not args.no_gallery)
        for path in written:
            print(f"report: {path}")
        return 0

    return run_cli(body)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m polyp_ray.report", description=help_text(__doc__))
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR", help="the folder a search wrote")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help=f"write the HTML here only (default: the experiment's polyp_ray/{REPORT}, "
                        "and its copy reports/<experiment name>.html here)")
    parser.add_argument("--no-gallery", action="store_true",
                        help="skip predicting the gallery with the best model (no TensorFlow; faster)")
    return parser
