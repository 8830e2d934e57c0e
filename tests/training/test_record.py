"""metrics.csv, a run's record: a resumed run continues it, a fresh run never reuses another run's directory."""

from __future__ import annotations

import logging

import pytest

from l2d.lightning.loggers import RunCSVLogger
from l2d.report.inputs import read_columns
from l2d.train import train
from l2d.validation import InputError


def test_a_resumed_run_continues_metrics_csv_at_its_checkpoints_step(tmp_path):
    """Rows before the checkpoint's step stay, rows from it on (logged after the checkpoint by the killed run)
    are replaced by the resumed run's, a row cut short by the kill is dropped, and a new column widens the
    header of the whole file."""
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,step,train/loss\r\n0,0,1.5\r\n0,1,1.25\r\n0,2,9.0\r\n0,3,9.")
    logger = RunCSVLogger(tmp_path, name="", version="")
    logger.resume_at(2)
    logger.log_metrics({"epoch": 0, "train/loss": 1.0}, step=2)
    logger.save()
    logger.log_metrics({"epoch": 0, "val/loss": 2.0}, step=2)
    logger.save()
    assert read_columns(metrics) == {"epoch": [0, 0, 0, 0], "step": [0, 1, 2, 2], "train/loss": [1.5, 1.25, 1.0],
                                     "val/loss": [2.0]}
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary file left


def test_a_fresh_logger_replaces_an_earlier_metrics_csv_and_says_so(tmp_path, caplog):
    """What an evaluation run again into its own directory does (its results.json is replaced too)."""
    (tmp_path / "metrics.csv").write_text("step,score\r\n0,0.5\r\n")
    logger = RunCSVLogger(tmp_path, name="", version="")
    with caplog.at_level(logging.WARNING):
        logger.log_metrics({"score": 0.75}, step=0)
        logger.save()
    assert read_columns(tmp_path / "metrics.csv") == {"score": [0.75], "step": [0]}
    assert "replacing the metrics of an earlier run" in caplog.text


@pytest.mark.parametrize("left", ["metrics", "checkpoint"])
def test_a_fresh_run_refuses_a_directory_that_holds_a_run(tiny_train, tmp_path, left):
    """Neither deleted nor mixed with the new run's: one line naming the directory and how to resume."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ("metrics.csv" if left == "metrics" else "checkpoints/last.ckpt")).write_text("kept\n")
    resume = (f"resume it with ckpt_path={run}/checkpoints/last.ckpt" if left == "checkpoint"
              else "it has no checkpoint to resume from; remove it")
    with pytest.raises(InputError) as refused:
        train(tiny_train(output_dir=run))  # refused before the model loads
    assert str(refused.value) == (f"{run} already holds a training run "
                                  f"({'metrics.csv' if left == 'metrics' else 'checkpoints'}): {resume}, "
                                  "or train into another directory (hydra.run.dir=DIR)")
    assert sorted(p.name for p in run.rglob("*")) == sorted(["checkpoints", "metrics.csv" if left == "metrics"
                                                             else "last.ckpt"])
