"""Fixture inputs in the real schemas: results.json of `python -m l2d.evaluate`, a CSVLogger training run."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from l2d.tasks.summary import wilson_interval

CATEGORIES = {"gsm8k": "math", "math": "math", "humaneval": "code", "mbpp": "code", "mmlu": "general",
              "reasoning_gym/chain_sum": "arithmetic"}
MIDPOINT = {"solver": "midpoint", "levels": 8, "t_final": 1.0, "x1_estimate": "sample", "x1_temperature": 0.0,
            "anneal_x1_temperature": True, "atol": 1e-3, "rtol": 1e-3}
PLAIN = {"solver": "none", "levels": 1}
PARAMETERS = {"base": None, "lora": 3_407_872, "full": 134_515_008, "l2d_lora": 73_400_320, "l2d_full": 992_000_000}
MIDPOINT_NFE = {1: 1.0, 2: 3.0, 4: 7.0, 8: 15.0, 16: 31.0}


def result_data(task: str, method: str, score: float, n: int = 200, nfe: float | None = None,
                checkpoint: str | None = None, label: str | None = None, **decoding: Any) -> dict[str, Any]:
    """One results.json as `python -m l2d.evaluate` writes it (records shortened to one)."""
    l2d = method.startswith("l2d")
    settings = {**(MIDPOINT if l2d else PLAIN), **decoding}
    if nfe is None:
        nfe = MIDPOINT_NFE.get(settings["levels"], 15.0) if l2d else 1.0
    code = CATEGORIES[task] == "code"
    low, high = wilson_interval(score * n, n)
    summary = {"metric": "pass@k" if code else "accuracy", "n": n, "n_correct": round(score * n),
               "n_unextracted": 3, "score": score, "ci95_low": low, "ci95_high": high, "mean_nfe": nfe,
               "n_cut_at_max_new_tokens": 0, **({"pass@1": score, "pass@5": min(1.0, 1.5 * score)} if code else {})}
    return {"task": task, "category": CATEGORIES[task], "metric": summary["metric"],
            "model": {"method": method, "base_model": "smollm2-135m",
                      "checkpoint": checkpoint or (None if method == "base" else f"runs/{method}/export"),
                      "trainable_parameters": PARAMETERS[method], "label": label},
            "decoding": {"guidance": None, "temperature": 1.0, "token_search": None,
                         "max_new_tokens": 512 if code else 256, "samples": 10 if code else 1, **settings},
            "summary": summary,
            "command": f"python -m l2d.evaluate task={task} checkpoint={checkpoint} | tee log", "seed": 0,
            "device": "cpu", "wall_seconds": 1.5,
            "records": [{"id": "0", "generations": ["The answer is 4."], "answer": "4", "target": "4",
                         "correct": True, "extracted": True, "nfe": nfe, "guidance_class": None}]}


@pytest.fixture
def write_result(tmp_path: Path):
    """write_result(name, task, method, score, **options) -> the path of <tmp>/evals/<name>/results.json."""
    def write(name: str, task: str, method: str, score: float, **options: Any) -> Path:
        path = tmp_path / "evals" / name / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(result_data(task, method, score, **options)))
        return path

    return write


def bin_losses(step: int, split: str, offset: float = 0.0) -> list[float]:
    """Loss falls with t (more signal) and with training steps; validation a little above training."""
    return [6.0 - 0.5 * i - 0.01 * step + (0.2 if split == "val" else 0.0) + offset for i in range(10)]


def write_run(run: Path, overrides: list[str], offset: float = 0.0, steps: int = 10, method: str = "l2d_lora") -> Path:
    """A CSVLogger metrics.csv with sparse rows (lr, train and val rows apart), metrics.json, .hydra."""
    (run / ".hydra").mkdir(parents=True)
    train_bins = [f"train/loss_t_bin{i}" for i in range(10)]
    val_bins = [f"val/loss_t_bin{i}" for i in range(10)]
    header = ["epoch", "lr-AdamW", "step", "train/loss", *train_bins, "val/loss", "val/loss_at_t0",
              "val/loss_at_t1", *val_bins]
    rows = []
    for step in range(steps):
        rows.append({"lr-AdamW": 1e-4, "step": step})
        rows.append({"epoch": 0, "step": step, "train/loss": 5.0 - 0.01 * step,
                     **dict(zip(train_bins, bin_losses(step, "train", offset), strict=True))})
        if step % 5 == 4 and method.startswith("l2d"):  # the last validation: 6.2 at t=0, 3.1 at t=1
            rows.append({"epoch": 0, "step": step, "val/loss": 5.5, "val/loss_at_t0": 6.2 + (steps - 1 - step) / 10,
                         "val/loss_at_t1": 3.1 + (steps - 1 - step) / 10,
                         **dict(zip(val_bins, bin_losses(step, "val", offset), strict=True))})
        elif step % 5 == 4:
            rows.append({"epoch": 0, "step": step, "val/loss": 2.5 + (steps - 1 - step) / 10})  # the last: 2.5
    with (run / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    (run / "metrics.json").write_text(json.dumps({"method": method, "trainable_parameters": 73_400_320,
                                                  "wall_seconds": 5400.0, "train/loss": 4.91}))
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return run


@pytest.fixture
def training_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "runs" / "sigma32", ["sigma=32", "data.micro_batch_size=4"])
