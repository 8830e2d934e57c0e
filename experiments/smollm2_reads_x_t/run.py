"""experiments/smollm2_reads_x_t: do diffusion steps pay once the path reads x_t?

SmolLM2-135M-Instruct, the default job's short answers (2-term arithmetic, experiment=short_answers) but 600 steps
of 16 instead of 200, the paper's zero start (`start=zero`: the path's stream is translation(x_t) alone, so it has
to read x_t), bf16-mixed. The health signal, loss(t=1)/loss(t=0.25) over the same validation positions and noise
(`val/health_ratio`), is logged every 50 steps; the checkpoints at steps 150, 300, 450 and 600 are kept and each is
scored on the 500 test problems (task=arithmetic, none trained on).

The stages run in the order the question needs them, so a cut run still answers the most of it: greedy levels 2, 8,
16 and 4 at every checkpoint (the last first), the frozen base (levels 1: the same at every checkpoint, scored
once), then LoRA trained on the same problems in the same order (equal training tokens) at the same checkpoints;
then the same under the paper's protocol (temperature 1, 4 samples: four times the cost), levels 2 and 8 first at
the earlier checkpoints, 16 and 4 there last.

    python -m experiments.smollm2_reads_x_t.run steps [--runs experiments/runs] [--dry-run]

Resumable: a finished stage is skipped, an interrupted training resumes from its last checkpoint. The plots and the
table: `python -m experiments.smollm2_reads_x_t.plot` over the same --runs. Results: README.md.
"""

from __future__ import annotations

from pathlib import Path

from experiments.driver import Experiment, Score, main

STEPS = 600
CHECKPOINTS = (150, 300, 450, 600)
LEVELS = (2, 8, 16, 4)  # the comparison the question turns on first
PROTOCOLS = ("greedy", "paper")
TRAINING = ("experiment=short_answers", f"data.sources.0.size={STEPS * 16 + 128}", f"trainer.max_steps={STEPS}",
            "trainer.val_check_interval=100",  # micro-batches of 8: a validation every 50 steps
            "trainer.precision=bf16-mixed", f"callbacks.model_checkpoint.every_n_train_steps={CHECKPOINTS[0]}",
            "callbacks.model_checkpoint.save_top_k=-1")  # every checkpoint kept, not only the last
ARMS = {"l2d": ("start=zero",), "lora": ("method=lora",)}


def checkpoint(ex: Experiment, arm: str, step: int) -> Path:
    return ex.out / arm / "checkpoints" / f"step{step:06d}.ckpt"


def steps(ex: Experiment, runs: Path) -> None:
    """Train L2D, score every checkpoint greedily, then LoRA; then the paper's protocol, the last checkpoint first."""
    ex.train("l2d", *TRAINING, *ARMS["l2d"])
    by_step = [CHECKPOINTS[-1], *CHECKPOINTS[:-1]]
    for protocol in PROTOCOLS:
        for step in by_step:
            first = LEVELS if protocol == "greedy" or step == STEPS else LEVELS[:2]  # paper: 4 samples, 4x the cost
            ex.score(f"l2d_step{step}", [Score(protocol, levels) for levels in first], checkpoint(ex, "l2d", step))
        ex.evaluate(protocol, "base", "checkpoint=null", "solver.levels=1")
        ex.train("lora", *TRAINING, *ARMS["lora"])
        for step in by_step:
            ex.evaluate(protocol, f"lora_step{step}", f"checkpoint={checkpoint(ex, 'lora', step)}")
    for step in CHECKPOINTS[:-1]:
        ex.score(f"l2d_step{step}", [Score("paper", levels) for levels in LEVELS[2:]], checkpoint(ex, "l2d", step))
    ex.report(ex.out)
    ex.finish()


if __name__ == "__main__":
    main({"steps": (steps, "smollm2_reads_x_t")}, __doc__)
