"""experiments/baselines: what does the base SmolLM2-135M-Instruct score alone? The numbers every later experiment
must beat: the frozen base (checkpoint=null: L2D at one level) under the paper's protocol (5-shot context as past
chat turns, untempered sampling at temperature 1), seed 0, on the GSM8K held-out slice, two reasoning-gym tasks
and HumanEval; then one table.

    python -m experiments.baselines.run base [--gsm8k PATH] [--runs experiments/runs] [--dry-run]

--gsm8k (default: $L2D_GSM8K): a local copy of GSM8K's train split (JSONL); without it the hub's. Resumable: a
finished scoring is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

from experiments.driver import Experiment, main


def base(ex: Experiment, runs: Path, gsm8k: str | None) -> None:
    """The base model on each task, then the report."""
    tasks = {"gsm8k": ("task=gsm8k_heldout", *([f"task.options.path={gsm8k}"] if gsm8k else []), "batch_size=16"),
             "chain_sum": ("task=reasoning_gym/chain_sum",),
             "basic_arithmetic": ("task=reasoning_gym/basic_arithmetic",),
             "humaneval": ("task=humaneval", "samples=1", "batch_size=16")}
    for name, task in tasks.items():
        directory = ex.out / name
        ex.stage(f"evaluate {name}", directory / "results.json",
                 ["python", "-m", "l2d.evaluate", *task, "progress=false", f"hydra.run.dir={directory}"])
    ex.report(*(ex.out / name for name in tasks))
    ex.finish()


def options(parser) -> None:
    parser.add_argument("--gsm8k", default=os.environ.get("L2D_GSM8K"),
                        help="a local copy of GSM8K's train split (JSONL), for an offline machine")


if __name__ == "__main__":
    main({"base": (base, "baselines")}, __doc__, options=options)
