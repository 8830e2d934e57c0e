"""Scoring a training checkpoint directly (`checkpoint=<run>/checkpoints/stepNNNNNN.ckpt`): the network rebuilt from
the run's composed config, the checkpoint's trainable state loaded, the same model as an export made at that step."""

import shutil
import subprocess
import sys

import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.evaluate import evaluate
from l2d.export import load_training_checkpoint
from l2d.model.digest import ExportError
from l2d.model.finetune import finetuned_base
from l2d.model.tiny import tiny_model
from l2d.train import train
from l2d.validation import InputError, check_evaluate
from tests.compose import compose_config
from tests.training.conftest import SMALL_REASONING_GYM, TINY_RUN

# A constant learning rate (scheduler=null), so that a run stopped at step 2 takes the steps a longer run takes first.
RUN = [*TINY_RUN, SMALL_REASONING_GYM, "scheduler=null", "callbacks.model_checkpoint.every_n_train_steps=2",
       "callbacks.model_checkpoint.save_top_k=-1"]
SCORE = ["model=tiny", "task=reasoning_gym/chain_sum", "task.options.size=4", "limit=2", "batch_size=2",
         "max_new_tokens=6", "progress=false"]  # protocol=paper: 4 completions sampled at temperature 1


def run_train(*overrides: str, cwd) -> None:
    result = subprocess.run([sys.executable, "-m", "l2d.train", *RUN, *overrides], cwd=cwd, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """From the command line, as users run it: a 2-step LoRA run, then a 4-step L2D run on that finetuned model (given
    by a path relative to where it was started), with checkpoints at steps 2 and 4; in process, the same L2D run
    stopped at max_steps=2, whose export is the model at step 2."""
    root = tmp_path_factory.mktemp("runs")
    run_train("method=lora", "trainer.max_steps=2", "hydra.run.dir=lora", cwd=root)
    run_train("finetuned=lora/export", "trainer.max_steps=4", "hydra.run.dir=l2d", cwd=root)
    train(compose_config("train", [*RUN, f"finetuned={root / 'lora' / 'export'}", "trainer.max_steps=2"],
                         root / "l2d_at_2"))
    return root


def generations(checkpoint, tmp_path, *overrides: str) -> tuple[list, dict]:
    result = evaluate(compose_config("evaluate", [*SCORE, f"checkpoint={checkpoint}", *overrides], tmp_path))
    return [record["generations"] for record in result["records"]], result["model"]


def trainable(model) -> dict[str, torch.Tensor]:
    return dict(model.trainable_named_parameters())


def test_a_checkpoint_scores_as_the_export_made_at_its_step(runs, tmp_path):
    from_checkpoint, model = generations(runs / "l2d" / "checkpoints" / "step000002.ckpt", tmp_path / "a")
    from_export, _ = generations(runs / "l2d_at_2" / "export", tmp_path / "b")
    assert from_checkpoint == from_export
    assert model["method"] == "l2d_lora" and model["step"] == 2 and model["run"] == str(runs / "l2d")
    assert model["finetuned"]["path"] == str(runs / "lora" / "export")  # the chain its run's config named
    at_2 = trainable(L2DModel.from_pretrained(runs / "l2d" / "checkpoints" / "step000002.ckpt"))
    export = trainable(L2DModel.from_pretrained(runs / "l2d_at_2" / "export"))
    at_4 = trainable(L2DModel.from_pretrained(runs / "l2d" / "checkpoints" / "step000004.ckpt"))
    assert all(torch.equal(at_2[name], export[name]) for name in export)
    assert any(not torch.equal(at_2[name], at_4[name]) for name in at_4)  # each checkpoint its own step's


def test_the_last_checkpoint_scores_as_the_runs_own_export(runs, tmp_path):
    from_checkpoint, _ = generations(runs / "l2d" / "checkpoints" / "last.ckpt", tmp_path / "a")
    from_export, _ = generations(runs / "l2d" / "export", tmp_path / "b")
    assert from_checkpoint == from_export


def test_loading_is_the_checkpoints_state_put_into_the_network_by_hand(runs):
    path = runs / "l2d" / "checkpoints" / "step000002.ckpt"
    by_hand = L2DModel(finetuned_base(tiny_model()[0], runs / "lora" / "export"), L2DConfig())
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    by_hand.load_state_dict({key.removeprefix("network."): value for key, value in state.items()}, strict=False)
    loaded = L2DModel.from_pretrained(path)
    ids = torch.randint(0, 256, (2, 5), generator=torch.Generator().manual_seed(0))
    tokens = [model.eval().generate(ids, max_new_tokens=4, generator=torch.Generator().manual_seed(0))
              for model in (by_hand, loaded)]
    assert torch.equal(*tokens)
    assert all(torch.equal(value, trainable(loaded)[name]) for name, value in trainable(by_hand).items())


def test_a_lora_checkpoint_scores_as_its_export(runs, tmp_path):
    from_checkpoint, model = generations(runs / "lora" / "checkpoints" / "step000002.ckpt", tmp_path / "a")
    from_export, _ = generations(runs / "lora" / "export", tmp_path / "b")
    assert from_checkpoint == from_export and model["method"] == "lora" and model["step"] == 2


def test_a_checkpoint_away_from_its_run_or_on_another_base_is_refused(runs, tmp_path):
    alone = tmp_path / "step000002.ckpt"
    shutil.copy(runs / "l2d" / "checkpoints" / "step000002.ckpt", alone)
    with pytest.raises(InputError, match=r"no \.hydra/config\.yaml beside it or in the directory above"):
        load_training_checkpoint(alone)
    with pytest.raises(ExportError, match=r"trained on another base than the one given: base.probe its base's weights "
                                          r"there, other weights \(embedding sketch \d+% away\) here"):
        load_training_checkpoint(runs / "l2d" / "checkpoints" / "step000002.ckpt", base_model="tiny:seed=1")
    with pytest.raises(InputError, match=r"checkpoint=.*/nope\.ckpt: no such file \(give a training run's export/ "
                                         r"directory, or one of its checkpoints/\*\.ckpt\)"):
        check_evaluate(compose_config("evaluate", [*SCORE, f"checkpoint={tmp_path / 'nope.ckpt'}"]))


def test_an_evaluation_of_a_checkpoint_is_named_by_its_run_and_step(runs, tmp_path):
    from omegaconf import OmegaConf

    from l2d.tracking import checkpoint_name, settings

    path = runs / "l2d" / "checkpoints" / "step000002.ckpt"
    assert checkpoint_name(str(path), None, None) == "l2d@step000002"
    assert checkpoint_name(str(runs / "l2d" / "export"), None, None) == "l2d"
    _, model = generations(path, tmp_path)
    cfg = OmegaConf.create({"checkpoint": str(path)})
    assert settings(cfg, {"decoding": {"guidance": None}, "model": model}) == {"sigma": 64.0}  # W&B's score_by/sigma


def test_a_checkpoint_of_a_run_from_before_research_options_scores_as_the_path_it_trained(runs, tmp_path):
    """Runs before l2d.research kept drafts, chain_states and chain_levels at the top of the path's config and of
    the run fingerprint, where L2DConfig no longer takes them: their checkpoints still load, as what they trained."""
    from omegaconf import OmegaConf

    old = tmp_path / "old"
    shutil.copytree(runs / "l2d", old)
    config = OmegaConf.load(old / ".hydra" / "config.yaml")
    path_config = config.method.network.config
    del path_config["research"]
    path_config.update(drafts=0.0, chain_states=0.0, chain_levels=[2, 4, 8])
    OmegaConf.save(config, old / ".hydra" / "config.yaml")
    path = old / "checkpoints" / "step000002.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    fingerprint = checkpoint["callbacks"]["RunGuard"]["fingerprint"]
    del fingerprint["research"]
    fingerprint.update(drafts=0.0, chain_states=0.0, chain_levels=[2, 4, 8])
    torch.save(checkpoint, path)
    loaded = trainable(L2DModel.from_pretrained(path))
    now = trainable(L2DModel.from_pretrained(runs / "l2d" / "checkpoints" / "step000002.ckpt"))
    assert loaded.keys() == now.keys() and all(torch.equal(loaded[name], now[name]) for name in now)
