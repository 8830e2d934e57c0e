"""A training checkpoint of an RL stage scores as its export: the policy rebuilt from the export the stage started at
(`init=`, relative to where the run was started), then the checkpoint's trainable state."""

import subprocess
import sys

from l2d.evaluate import evaluate
from l2d.train import train
from tests.compose import compose_config
from tests.training.conftest import TINY_RUN

RUN = [*TINY_RUN, "data=arithmetic", "data.sources.0.size=40"]
RL = ["method=l2d_rl", "method.reinforce.steps=2", "method.reinforce.prompts_per_step=1",
      "method.reinforce.group_size=2", "method.reinforce.max_new_tokens=2", "method.reinforce.levels=[2]",
      "method.reinforce.validation.options.size=2", "method.reinforce.validation_levels=[2]",
      "callbacks.model_checkpoint.every_n_train_steps=1", "callbacks.model_checkpoint.save_top_k=-1"]
SCORE = ["model=tiny", "task=arithmetic", "task.options.size=3", "max_new_tokens=3", "progress=false", "samples=2",
         "solver.levels=2"]  # protocol=paper: sampled at temperature 1


def test_an_rl_stage_checkpoint_scores_as_its_export(tmp_path):
    """The stage runs in its own process, as users start it, so that its run directory is Hydra's own."""
    train(compose_config("train", [*RUN, "trainer.max_steps=2"], tmp_path / "start"))
    done = subprocess.run([sys.executable, "-m", "l2d.train", *RUN, *RL, "init=start/export", "hydra.run.dir=rl"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    scored = {name: evaluate(compose_config("evaluate", [*SCORE, f"checkpoint={tmp_path / 'rl' / path}"],
                                            tmp_path / name))
              for name, path in (("checkpoint", "checkpoints/last.ckpt"), ("export", "export"))}
    generations = {name: [r["generations"] for r in result["records"]] for name, result in scored.items()}
    assert generations["checkpoint"] == generations["export"]
    model = scored["checkpoint"]["model"]
    assert model["method"] == "l2d_lora_rl" and model["step"] == 2
    first = evaluate(compose_config("evaluate", [*SCORE, f"checkpoint={tmp_path / 'rl/checkpoints/step000001.ckpt'}"],
                                    tmp_path / "first"))
    assert first["model"]["step"] == 1
