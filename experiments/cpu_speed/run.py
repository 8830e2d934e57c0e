"""experiments/cpu_speed: does training and scoring in bfloat16 on a CPU with bf16 matrix units cost accuracy?

The default job (`python -m l2d.train`, 200 steps of 16 short answers) trained twice, one after the other: as
before issue 44 (`trainer.precision=32-true optimizer.fused=false`: float32, AdamW's for-loop) and as now (the
default `precision: auto`, which picks bf16-mixed on such a CPU: frozen weights stored in bfloat16, the path in
float32 under autocast, fused AdamW). Both exports are scored on the 500 test problems (task=arithmetic) greedily
and under the paper's protocol at midpoint levels 2 and 8, in the evaluation dtype `auto` picks (bfloat16 for
batches). Speed figures come from the scripts beside this file (step_parts.py, profile_step.py, decode_dtypes.py).

    python -m experiments.cpu_speed.run parity [--runs experiments/runs] [--dry-run]

Results: README.md.
"""

from __future__ import annotations

from pathlib import Path

from experiments.driver import Experiment, Score, main

ARMS = {"float32": ("trainer.precision=32-true", "optimizer.fused=false"), "auto": ()}
SCORES = [Score(protocol, levels) for protocol in ("greedy", "paper") for levels in (2, 8)]  # the cheap ones first


def parity(ex: Experiment, runs: Path) -> None:
    """Train the default job in both precisions, score both exports at the same settings, compare them."""
    exports = {arm: ex.train(arm, *overrides) for arm, overrides in ARMS.items()}
    for score in SCORES:  # both arms at one setting before the next, so a cut run still compares
        for arm, export in exports.items():
            ex.score(arm, [score], export)
    if ex.ready(*(ex.results(arm, score) for arm in ARMS for score in SCORES)):
        for score in SCORES:
            ex.compare(ex.results("float32", score), ex.results("auto", score))
    ex.finish()


if __name__ == "__main__":
    main({"parity": (parity, "cpu_speed")}, __doc__)
