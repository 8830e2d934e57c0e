"""experiments/smollm2_gsm8k: do the paper's five claims hold at 135M? SmolLM2-135M-Instruct with the bare,
paper-like defaults (~experiment): every method on the same data, steps and seed, then every evaluation, then
the report. One study per scale:

  gpu   GSM8K + reasoning-gym training (data=gsm8k_reasoning_gym, 2 epochs); lora, full, l2d_lora (guidance),
        l2d_lora with cosmap, l2d_full; scored on the GSM8K held-out slice, chain_sum, basic_arithmetic (200 each)
        and HumanEval (40, 10 samples); levels 1-32, Euler, an adaptive solver and guidance 1.5 / 2.0
  cpu   a CPU-sized rehearsal of the same pipeline in about an hour (60 examples, lora and l2d_lora, chain_sum only)

    python -m experiments.smollm2_gsm8k.run gpu [--stage train|evaluate|all] [--gsm8k PATH] [--runs DIR] [--dry-run]

GSM8K comes from the hub; offline, copy GSM8K's train split (openai/gsm8k main, JSONL) onto the machine and give
--gsm8k PATH (default: $L2D_GSM8K; or put it under $L2D_DATA, see the README's "Data offline"). Resumable: a
finished stage is skipped, an interrupted training resumes from its last checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from experiments.driver import Experiment, main

METHODS = {"lora": ("method=lora",), "full": ("method=full",),
           "l2d_lora": ("method=l2d_lora", "method.guidance=true"),
           "l2d_lora_cosmap": ("method=l2d_lora", "method.guidance=true", "timestep_sampling=cosmap"),
           "l2d_full": ("method=l2d_full", "method.guidance=true")}


def gpu(ex: Experiment, runs: Path, stage: str, gsm8k: str | None) -> None:
    """The paper-scale pipeline on a GPU."""
    # The GSM8K score is the held-out slice of train (gsm8k_heldout), the only GSM8K split an offline machine has.
    heldout = ("task=gsm8k_heldout", *([f"task.options.path={gsm8k}"] if gsm8k else []), "limit=200")
    tasks = [heldout, ("task=reasoning_gym/chain_sum", "limit=200"),
             ("task=reasoning_gym/basic_arithmetic", "limit=200"), ("task=humaneval", "limit=40", "samples=10")]
    pipeline(ex, stage, data=("data=gsm8k_reasoning_gym", *([f"data.sources.0.path={gsm8k}"] if gsm8k else [])),
             epochs=2, batch=64, levels=(1, 2, 4, 16, 32), methods=tuple(METHODS), tasks=tasks, scaling=tasks[:2])


def cpu(ex: Experiment, runs: Path, stage: str, gsm8k: str | None) -> None:
    """The CPU rehearsal: little data, one task, short generations."""
    tasks = [("task=reasoning_gym/chain_sum", "limit=20")]
    pipeline(ex, stage, data=("data=reasoning_gym", "data.sources.0.size=60"), epochs=1, batch=20, levels=(1, 2, 4),
             methods=("lora", "l2d_lora"), tasks=tasks, scaling=tasks, extra=("max_new_tokens=64",))


def pipeline(ex: Experiment, stage: str, data, epochs: int, batch: int, levels, methods, tasks, scaling,
             extra=()) -> None:
    def evaluate(name: str, *overrides: str) -> None:
        directory = ex.out / "eval" / name
        ex.stage(f"evaluate {name}", directory / "results.json",
                 ["python", "-m", "l2d.evaluate", "progress=false", f"batch_size={batch}", "seed=0", *extra,
                  *overrides, f"hydra.run.dir={directory}"])

    if stage in ("train", "all"):
        for method in methods:  # the bare, paper-like defaults
            ex.train(method, "~experiment", *data, f"trainer.max_epochs={epochs}", "seed=0", *METHODS[method])
    if stage in ("evaluate", "all"):
        scores(ex, evaluate, methods, tasks, scaling, levels)
    ex.finish()


def scores(ex: Experiment, evaluate, methods, tasks, scaling, levels) -> None:
    """Every method on every task, then L2D-LoRA's steps, solvers and guidance, then the report."""
    for i, task in enumerate(tasks):
        evaluate(f"base_{i}", *task)
        for method in methods:
            evaluate(f"{method}_{i}", *task, f"checkpoint={ex.out}/{method}/export")
    # Claims 2 and 4: accuracy against steps, Euler at 15 NFE, the adaptive solver's NFE; then guidance.
    l2d = f"checkpoint={ex.out}/l2d_lora/export"
    for task in scaling:
        tag = task[0].removeprefix("task=").replace("/", "_")
        for n in levels:
            evaluate(f"steps_{tag}_{n}", *task, l2d, f"solver.levels={n}")
        evaluate(f"euler_{tag}", *task, l2d, "solver=euler")
        evaluate(f"adaptive_{tag}", *task, l2d, "solver=fehlberg2")
        for weight in ("1.5", "2.0"):
            evaluate(f"guidance_{tag}_{weight}", *task, l2d, f"guidance={weight}")
    ex.report(ex.out)


def options(parser) -> None:
    parser.add_argument("--stage", choices=("train", "evaluate", "all"), default="all",
                        help="train the methods, score them, or both (default)")
    parser.add_argument("--gsm8k", default=os.environ.get("L2D_GSM8K"),
                        help="a local copy of GSM8K's train split (JSONL), for an offline machine")


if __name__ == "__main__":
    main({"gpu": (gpu, "smollm2_gsm8k_gpu"), "cpu": (cpu, "smollm2_gsm8k_cpu")}, __doc__, options=options)
