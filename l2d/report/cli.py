"""python -m l2d.report inputs=[results files, run dirs or multirun dirs, ...] [out=DIR] (Hydra, conf/report.yaml)"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import hydra
from matplotlib.figure import Figure
from omegaconf import DictConfig, ListConfig, OmegaConf

from l2d.config import config_dir
from l2d.files import write_atomically
from l2d.report import plots
from l2d.report.inputs import collect
from l2d.report.records import NoInputs, Result, TrainingRun
from l2d.report.rows import newest_per_row_and_task
from l2d.report.series import adaptive_nfe, base_scores, guidance_curves, nfe_curves
from l2d.report.tables import report


def figures(results: Sequence[Result], runs: Sequence[TrainingRun]) -> dict[str, Figure]:
    """The PNG files that have data, by file name."""
    made = {}
    if found := nfe_curves(results):
        made["accuracy_vs_nfe.png"] = plots.accuracy_vs_nfe(found, base_scores(results))
    if any(run.has_loss_per_bin or run.loss_at_t() for run in runs):
        made["loss_vs_t.png"] = plots.loss_vs_t(runs)
    if rl := [run for run in runs if run.reward_by_levels()]:
        made["rl_reward.png"] = plots.rl_reward(rl)
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


def run(cfg: DictConfig) -> list[Path]:
    """Build the report `cfg` asks for and print what was written; bad inputs end the run with one line."""
    if OmegaConf.is_missing(cfg, "inputs"):
        raise SystemExit("python -m l2d.report: error: name what to read, e.g. "
                         "inputs=[experiments/runs,experiments/multiruns] (results files, run dirs or multirun dirs)")
    inputs = cfg.inputs if isinstance(cfg.inputs, ListConfig) else [cfg.inputs]
    try:
        written = build([Path(str(path)) for path in inputs], Path(cfg.out))
    except (FileNotFoundError, NoInputs) as error:
        raise SystemExit(f"python -m l2d.report: error: {error}") from None
    for path in written:
        print(f"wrote {path}")
    return written


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="report")
def main(cfg: DictConfig) -> None:
    run(cfg)
