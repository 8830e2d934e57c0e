"""python -m l2d.report <results files, run dirs or multirun dirs ...> [--out DIR]"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from matplotlib.figure import Figure

from l2d.files import write_atomically
from l2d.report import plots
from l2d.report.inputs import NoInputs, Result, TrainingRun, collect
from l2d.report.rows import newest_per_row_and_task
from l2d.report.series import adaptive_nfe, base_scores, guidance_curves, nfe_curves
from l2d.report.tables import report


def figures(results: Sequence[Result], runs: Sequence[TrainingRun]) -> dict[str, Figure]:
    """The PNG files that have data, by file name."""
    made = {}
    if found := nfe_curves(results):
        made["accuracy_vs_nfe.png"] = plots.accuracy_vs_nfe(found, base_scores(results))
    if any(run.has_loss_per_bin for run in runs):
        made["loss_vs_t.png"] = plots.loss_vs_t(runs)
    if found := adaptive_nfe(results):
        made["nfe_per_task.png"] = plots.nfe_per_task(found)
    if found := guidance_curves(results):
        made["accuracy_vs_guidance.png"] = plots.accuracy_vs_guidance(found)
    return made


def build(paths: Sequence[Path], out: Path) -> list[Path]:
    """Write report.md and the plots with data into `out`; returns the files written."""
    results, runs = collect(paths)
    results = newest_per_row_and_task(results)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.md"]
    write_atomically(written[0], lambda path: path.write_text(report(results, runs)))
    for name, figure in figures(results, runs).items():
        write_atomically(out / name, partial(plots.save, figure))
        written.append(out / name)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m l2d.report", description=(
        "Turn evaluation results (results.json of python -m l2d.evaluate) and training runs (metrics.csv) "
        "into the paper's tables (report.md) and figures (PNG). Directories are searched recursively."))
    parser.add_argument("paths", nargs="+", type=Path, help="results files, run dirs or multirun dirs")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output directory (default: ./report)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        written = build(args.paths, args.out)
    except (FileNotFoundError, NoInputs) as error:
        parser.error(str(error))
    for path in written:
        print(f"wrote {path}")
