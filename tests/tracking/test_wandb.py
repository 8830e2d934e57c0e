"""W&B across the workflow, offline: training and evaluation write W&B runs, and the test reads back
what they wrote from the runs' record logs (metric names, groups, the link to the training run, the
problem table), and the report takes those offline runs as its input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from l2d.evaluate import evaluate
from l2d.report import build
from l2d.report.inputs import collect
from l2d.report.records import NoInputs
from l2d.report.wandb_runs import WandbRun, offline_run, records
from l2d.tracking import PROBLEM_COLUMNS, RUN_RECORD
from l2d.train import train
from tests.compose import compose_config
from tests.training.conftest import SMALL_REASONING_GYM, TINY_RUN

# Four optimizer steps of two micro-batches, validated after steps 2 and 4.
TRAIN = TINY_RUN + [SMALL_REASONING_GYM, "logger=wandb", "trainer.max_steps=4", "trainer.val_check_interval=4"]
CHART = "_table"  # W&B keeps a custom chart's data in the history as <key>_table
EVALUATE = ["model=tiny", "limit=2", "batch_size=2", "max_new_tokens=6", "progress=false",
            "task=reasoning_gym/chain_sum", "task.options.size=4", "logger=wandb"]


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No W&B key anywhere (a fresh HOME), so the runs are written offline."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("WANDB_API_KEY", raising=False)
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        patch.setenv("WANDB_MODE", "offline")
        yield


def the_run(directory: Path) -> WandbRun:
    """The one W&B run written under a run directory."""
    found = sorted((directory / "wandb").glob("offline-run-*"))
    assert len(found) == 1, found
    return offline_run(found[0])


def table(run: WandbRun, value: dict) -> dict:
    """A logged wandb.Table (a history or summary value) read from the run's files."""
    assert value["_type"] == "table-file"
    return json.loads((run.path / "files" / value["path"]).read_text())


def metric_axes(run: WandbRun) -> dict[str, str]:
    """{metric: its x axis} from the run's define_metric records."""
    axes = {}
    for record in records(next(run.path.glob("run-*.wandb"))):
        if record.WhichOneof("record_type") == "metric" and record.metric.name:
            axes[record.metric.name] = record.metric.step_metric
    return axes


@pytest.fixture(scope="module")
def trained(offline, tmp_path_factory):
    directory = tmp_path_factory.mktemp("trained") / "2026-01-01_00-00-00_train"
    train(compose_config("train", TRAIN, directory))
    return directory


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory):
    directory = tmp_path_factory.mktemp("evaluated") / "eval"
    result = evaluate(compose_config("evaluate", EVALUATE + [f"checkpoint={trained / 'export'}", "solver.levels=2"],
                                     directory))
    return directory, result


def test_training_run_draws_the_loss_against_t_and_records_itself_in_the_export(trained):
    run = the_run(trained)
    assert run.group == trained.name and run.job_type == "train"  # a single run is a group of its own
    assert run.name.startswith("l2d_lora ") and "l2d_lora" in run.tags and "trainer.max_steps=4" in run.tags
    assert run.config["method"]["name"] == "l2d_lora" and run.config["sigma"] == 64.0
    logged = {key for row in run.history for key in row}
    assert {"train/loss", "lr-AdamW", "train/grad_norm", "val/loss_at_t0", "val/loss_at_t0.5", "val/loss_at_t1",
            "val/w_d_at_t1", f"val/loss_vs_t{CHART}", f"val/w_d_vs_t{CHART}"} <= logged
    assert any(key.startswith("train/grad_norm_") for key in logged)  # per parameter group

    # The line plot holds one line per validation, drawn from the logged losses at fixed t.
    validations = [row for row in run.history if "val/loss_at_t1" in row]
    charts = [row for row in run.history if f"val/loss_vs_t{CHART}" in row]
    assert len(validations) == len(charts) == 2
    lines = table(run, charts[-1][f"val/loss_vs_t{CHART}"])
    assert lines["columns"] == ["step", "lineKey", "lineVal"]
    for row, step in zip(validations, (2, 4), strict=True):
        drawn = [(x, y) for x, key, y in lines["data"] if key == f"step {step}"]
        assert drawn == [(t, pytest.approx(row[f"val/loss_at_t{t:g}"])) for t in (0, 0.25, 0.5, 0.75, 0.9, 1)]

    record = json.loads((trained / "export" / RUN_RECORD).read_text())
    assert record == {"id": run.id, "project": "l2d", "entity": None, "group": run.group, "name": run.name,
                      "offline": True, "artifact": None}  # no upload offline


def test_evaluation_joins_its_training_group_with_scores_settings_and_problems(trained, evaluated):
    directory, result = evaluated
    training, run = the_run(trained), the_run(directory)
    assert run.group == training.group and run.job_type == "evaluate"
    assert run.config["training_run"]["id"] == training.id
    # named by its training run, the task and its own overrides (every one given here, so all of EVALUATE's)
    assert run.name.startswith(f"{training.name}: reasoning_gym/chain_sum model=tiny limit=2")
    assert run.name.endswith(" solver.levels=2") and "checkpoint=" not in run.name
    assert {"solver.levels=2", "l2d_lora", "reasoning_gym/chain_sum"} <= set(run.tags)
    assert run.config["decoding"]["solver"] == "midpoint" and run.config["decoding"]["levels"] == 2

    summary = result["summary"]
    assert run.summary["eval/score"] == summary["score"]
    assert run.summary["eval/ci95_low"] == summary["ci95_low"] and run.summary["eval/ci95_high"] == summary["ci95_high"]
    assert run.summary["eval/mean_nfe"] == summary["mean_nfe"] == 3.0
    assert run.summary["eval/tokens_per_s"] == summary["tokens_per_s"] > 0
    assert run.summary["setting/sigma"] == 64.0 and run.summary["score_by/sigma"] == summary["score"]

    axes = metric_axes(run)  # W&B draws every score against NFE, and against σ
    assert axes["eval/score"] == axes["eval/ci95_high"] == axes["eval/tokens_per_s"] == "eval/mean_nfe"
    assert axes["score_by/sigma"] == "setting/sigma"

    problems = table(run, run.summary["problems"])
    assert problems["columns"] == PROBLEM_COLUMNS
    assert problems["data"] == [[str(r["id"]), r["question"], r["generations"][0], r["answer"], str(r["target"]),
                                 r["correct"], r["nfe"]] for r in result["records"]]


def test_report_reads_offline_runs_as_it_reads_local_ones(trained, evaluated, tmp_path):
    directory, _ = evaluated
    w_results, w_runs = collect([next((trained / "wandb").glob("offline-run-*")),
                                 next((directory / "wandb").glob("offline-run-*"))])
    local_results, local_runs = collect([trained, directory])  # their W&B copies are not read twice
    assert len(w_results) == len(local_results) == 1 and len(w_runs) == len(local_runs) == 1
    assert w_results[0].task == local_results[0].task and w_results[0].score == local_results[0].score
    assert w_results[0].decoding == local_results[0].decoding and w_results[0].nfe == 3.0
    assert w_runs[0].method == local_runs[0].method == "l2d_lora"
    assert w_runs[0].columns["val/loss_at_t1"] == pytest.approx(local_runs[0].columns["val/loss_at_t1"])
    from_wandb = build([trained / "wandb", directory / "wandb"], tmp_path / "wandb")[0].read_text()
    from_local = build([trained, directory], tmp_path / "local")[0].read_text()
    results = [text.split("## Results")[1].split("\n## ")[0] for text in (from_wandb, from_local)]
    assert "| chain_sum |" in results[0] and results[0] == results[1]  # the same table from either input


def test_a_wandb_group_without_an_account_is_one_clear_error(offline):
    with pytest.raises(NoInputs, match="wandb:someone/l2d/a-group: cannot read the group from W&B"):
        collect(["wandb:someone/l2d/a-group"])


def run_cli(entry: str, *args: str, cwd: Path) -> None:
    result = subprocess.run([sys.executable, "-m", entry, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_sweeps_land_as_one_group_with_tagged_runs(offline, tmp_path):
    """python -m l2d.train -m sigma=16,64 logger=wandb, then evaluate -m checkpoint=<both> solver.levels=1,2."""
    sweep = tmp_path / "2026-01-01_00-00-00_train"
    run_cli("l2d.train", "-m", *TRAIN, "sigma=16,64", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    exports = ",".join(str(sweep / job / "export") for job in ("0", "1"))
    run_cli("l2d.evaluate", "-m", *EVALUATE, f"checkpoint={exports}", "solver.levels=1,2",
            f"hydra.sweep.dir={tmp_path / 'eval'}", cwd=tmp_path)

    training = {run.config["sigma"]: run for run in (the_run(sweep / job) for job in ("0", "1"))}
    assert sorted(training) == [16.0, 64.0]
    for sigma, run in training.items():
        assert run.group == sweep.name and f"sigma={sigma:g}" in run.tags
    evaluations = [the_run(tmp_path / "eval" / str(job)) for job in range(4)]
    for run in evaluations:
        trained_by = training[run.summary["setting/sigma"]]
        assert run.group == sweep.name and run.config["sweep"] == "eval"  # with the training runs
        assert run.config["training_run"]["id"] == trained_by.id and run.name.startswith(trained_by.name)
        levels = run.config["decoding"]["levels"]
        assert f"solver.levels={levels}" in run.tags and run.summary["eval/mean_nfe"] == 2 * levels - 1
    written = build([sweep, tmp_path / "eval"], tmp_path / "report")
    assert {path.name for path in written} >= {"report.md", "accuracy_vs_nfe.png", "loss_vs_t.png"}
