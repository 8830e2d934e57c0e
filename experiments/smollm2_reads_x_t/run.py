"""experiments/smollm2_reads_x_t: do diffusion steps pay once the path reads x_t?

SmolLM2-135M-Instruct, the default job's short answers (2-term arithmetic, experiment=short_answers) but 1,000 steps
of 16 instead of 200, the paper's zero start (`start=zero`: the path's stream is translation(x_t) alone, so it has
to read x_t), bf16-mixed. The health signal, loss(t=1)/loss(t=0.25) over the same validation positions and noise
(`val/health_ratio`), is logged every 100 steps; the checkpoints at steps 250, 500, 750 and 1,000 are kept and each
is scored on the 500 test problems (task=arithmetic, none trained on) under both protocols at midpoint levels 2, 4,
8 and 16 (levels 1 is the frozen base, the same at every checkpoint: scored once). LoRA trained on the same problems
in the same order is scored at the same steps: equal training tokens.

    python -m experiments.smollm2_reads_x_t.run steps [--runs experiments/runs] [--dry-run]

Resumable: a finished stage is skipped, an interrupted training resumes from its last checkpoint. The plots and the
table: `python -m experiments.smollm2_reads_x_t.plot` over the same --runs. Results: README.md.
"""

from __future__ import annotations

from pathlib import Path

from experiments.driver import Experiment, Score, main

STEPS = 1000
CHECKPOINTS = (250, 500, 750, 1000)
LEVELS = (2, 8, 16, 4)  # the comparison the question turns on first, so a cut run still answers it
PROTOCOLS = ("greedy", "paper")
TRAINING = ("experiment=short_answers", f"data.sources.0.size={STEPS * 16 + 128}", f"trainer.max_steps={STEPS}",
            "trainer.val_check_interval=200",  # micro-batches of 8: a validation every 100 steps
            "trainer.precision=bf16-mixed", f"callbacks.model_checkpoint.every_n_train_steps={CHECKPOINTS[0]}",
            "callbacks.model_checkpoint.save_top_k=-1")  # every checkpoint kept, not only the last
ARMS = {"l2d": ("start=zero",), "lora": ("method=lora",)}


def checkpoint(ex: Experiment, arm: str, step: int) -> Path:
    return ex.out / arm / "checkpoints" / f"step{step:06d}.ckpt"


def steps(ex: Experiment, runs: Path) -> None:
    """Train both arms, then score every kept checkpoint, the last first."""
    for arm, overrides in ARMS.items():
        ex.train(arm, *TRAINING, *overrides)
    for protocol in PROTOCOLS:
        ex.evaluate(protocol, "base", "checkpoint=null", "solver.levels=1")
    for step in reversed(CHECKPOINTS):
        for protocol in PROTOCOLS:
            ex.evaluate(protocol, f"lora_step{step}", f"checkpoint={checkpoint(ex, 'lora', step)}")
        ex.score(f"l2d_step{step}", [Score(protocol, levels) for levels in LEVELS for protocol in PROTOCOLS],
                 checkpoint(ex, "l2d", step))
    ex.report(ex.out)
    ex.finish()


if __name__ == "__main__":
    main({"steps": (steps, "smollm2_reads_x_t")}, __doc__)
