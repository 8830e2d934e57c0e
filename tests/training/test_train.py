"""Tiny end-to-end training runs through the real configs: every method, resume, bad input."""

import json
import math
import time

import pytest
import torch

from l2d import L2DModel
from l2d.train import train
from l2d.validation import InputError
from tests.training.conftest import columns, logged


@pytest.mark.parametrize("method", ["l2d_lora", "l2d_full", "lora", "full"])
def test_each_method_trains_exports_and_logs(method, tiny_train, tmp_path):
    metrics = train(tiny_train(f"method={method}"))
    assert math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["val/loss"])
    assert metrics["global_step"] == 10  # 3 datasets x 16 - 8 held out = 40 examples, batch 4
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((tmp_path / "metrics.json").read_text())["method"] == method
    names = columns(tmp_path / "metrics.csv")
    assert {"train/loss", "train/grad_norm", "train/tokens_per_s", "lr-AdamW", "val/loss"} <= names
    card = (tmp_path / "export" / "README.md").read_text()  # the model card records the run
    assert card.startswith("---\n") and "| optimizer steps | 10 |" in card and "`ReasoningGymSource`" in card
    assert f"validation {metrics['val/loss']:.4f}" in card
    if method.startswith("l2d"):
        assert sum(c.startswith("train/loss_t_bin") for c in names) >= 5  # t-bins are logged
        assert {"val/loss_at_t0", "val/loss_at_t1", "val/w_d_at_t1", "val/health_ratio"} <= names
        assert metrics["val/health_ratio"] == pytest.approx(metrics["val/loss_at_t1"] / metrics["val/loss_at_t0.25"])
        assert f"| loss | {metrics['val/loss_at_t0']:.4f} |" in card  # the first t of the card's loss-by-t row
        restored = L2DModel.from_pretrained(tmp_path / "export")  # base rebuilt from its recorded name
        assert restored.config.full_path == (method == "l2d_full")
    else:
        assert (tmp_path / "export").is_dir()


def test_the_start_depends_on_the_seed_not_on_what_loading_drew(tiny_train, tmp_path, monkeypatch):
    """A base de-quantized from a GGUF file draws random numbers while loading, its cached copy does not: the
    same seed must still give the same run (found when the cache changed the short-answer experiment)."""
    import l2d.model.tiny

    exports = []
    for draws in (0, 1000):
        loader = l2d.model.tiny.tiny_model

        def loading_that_draws(*args, _load=loader, _draws=draws, **kwargs):
            loaded = _load(*args, **kwargs)
            torch.rand(_draws)
            return loaded

        monkeypatch.setattr(l2d.model.tiny, "tiny_model", loading_that_draws)
        train(tiny_train("trainer.max_steps=2", output_dir=tmp_path / str(draws)))
        monkeypatch.setattr(l2d.model.tiny, "tiny_model", loader)
        exports.append(L2DModel.from_pretrained(tmp_path / str(draws) / "export").state_dict())
    assert exports[0].keys() == exports[1].keys()
    assert all(torch.equal(exports[0][name], exports[1][name]) for name in exports[0])


def test_checkpoint_holds_only_trainable_weights(tiny_train, tmp_path):
    train(tiny_train())
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    names = list(checkpoint["state_dict"])
    assert names and all(name.startswith("network.diffusion.") for name in names)
    assert not any("base_layer" in name for name in names)
    assert checkpoint["optimizer_states"]


def test_resume_continues_at_the_same_step_with_the_same_next_loss(tiny_train, tmp_path):
    """A run interrupted after step 3 resumes from that checkpoint and sees the same later batches and the same
    noise (t, x0): its losses are the uninterrupted run's, to the bit."""
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    train(tiny_train("callbacks.model_checkpoint.every_n_train_steps=3", "callbacks.model_checkpoint.save_top_k=-1",
                     output_dir=full_dir))
    reference = logged(full_dir / "metrics.csv", "train/loss")
    # The checkpoint's wall time set far above any process's own, so that counting from it is told from
    # restarting at 0 whatever the machine's load (the process's set-up before the clock starts varies).
    checkpoint = torch.load(full_dir / "checkpoints" / "step000003.ckpt", weights_only=False)
    checkpoint["callbacks"]["WallTime"] = {"seconds": 1000.0}
    torch.save(checkpoint, tmp_path / "interrupted.ckpt")
    started = time.time()
    metrics = train(tiny_train(f"ckpt_path={tmp_path / 'interrupted.ckpt'}", output_dir=resumed_dir))
    own = time.time() - started
    resumed = logged(resumed_dir / "metrics.csv", "train/loss")
    assert metrics["global_step"] == 10
    assert sorted(resumed) == list(range(3, 10))  # continues at the next step, not from 0
    assert [resumed[s] for s in sorted(resumed)] == [reference[s] for s in sorted(resumed)]
    # the run's wall time: the seconds up to the checkpoint, then the resumed process's own
    assert 1000.0 < metrics["wall_seconds"] <= 1000.0 + own, (own, metrics["wall_seconds"])


def test_missing_data_file_is_named(tiny_train, tmp_path):
    cfg = tiny_train("data=jsonl", f"data.sources.0.path={tmp_path / 'nope.jsonl'}")
    with pytest.raises(InputError, match=r"data.sources.0.path=.*nope.jsonl: no such file"):
        train(cfg)  # refused by the config check, before the model loads


def test_malformed_jsonl_names_file_and_line_or_is_skipped(tiny_train, tmp_path):
    data = tmp_path / "chats.jsonl"
    good = json.dumps({"prompt": "2+2?", "response": "4"})
    data.write_text("\n".join([good] * 12 + ["{not json"] + [good] * 12) + "\n")
    with pytest.raises(ValueError, match=r"chats.jsonl:13"):
        train(tiny_train("data=jsonl", f"data.sources.0.path={data}", output_dir=tmp_path / "a"))
    metrics = train(tiny_train("data=jsonl", f"data.sources.0.path={data}", "data.skip_invalid=true",
                               output_dir=tmp_path / "b"))
    assert metrics["data"]["skipped_invalid"] == 1


def test_empty_dataset_fails_before_training(tiny_train, tmp_path):
    with pytest.raises(ValueError, match="no training examples left"):
        train(tiny_train("data.max_length=8"))
    assert not (tmp_path / "checkpoints").exists()


def test_nonfinite_losses_skip_steps_then_stop_with_finite_weights(tiny_train, tmp_path, monkeypatch):
    cfg = tiny_train("trainer.max_steps=8", "callbacks.model_checkpoint.every_n_train_steps=1")
    original = L2DModel.forward
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if self.training and calls["n"] > 4:  # after 2 good steps (2 micro-batches each), every loss is NaN
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(L2DModel, "forward", poisoned)
    with pytest.raises(RuntimeError, match="3 non-finite losses in a row"):
        train(cfg)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
    assert max(logged(tmp_path / "metrics.csv", "train/skipped_nonfinite_steps").values()) == 3


def test_guidance_classes_come_from_the_data(tiny_train):
    metrics = train(tiny_train("method.guidance=true"))
    assert metrics["class_names"] == ["basic_arithmetic", "chain_sum", "gsm_symbolic"]


@pytest.mark.parametrize("logger", ["wandb", "tensorboard"])
def test_other_loggers_run_offline_without_an_account(logger, tiny_train, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc with a W&B key
    metrics = train(tiny_train(f"logger={logger}", "trainer.max_steps=2"))
    assert metrics["global_step"] == 2
    assert (tmp_path / ("wandb" if logger == "wandb" else "tensorboard")).is_dir()


def test_lr_multipliers_train_each_group_at_its_own_rate(tiny_train, monkeypatch):
    """module.lr_multipliers={w_d: 0, conditioning: 0} holds w_d(t) at its start (the mirror start's open,
    equal-channel weight) while every other group trains at the full rate; translation at 0.5x gets half of it."""
    from l2d.lightning.module import TrainingModule

    cfg = tiny_train("module.lr_multipliers={w_d:0,conditioning:0,translation:0.5}", "lr=1e-3")
    groups = {}
    original = TrainingModule.configure_optimizers

    def capture(self):
        configured = original(self)
        for group in configured["optimizer"].param_groups:
            starts = [p.detach().clone() for p in group["params"]]
            groups[group["name"]] = (group["initial_lr"], group["params"], starts)
        return configured

    monkeypatch.setattr(TrainingModule, "configure_optimizers", capture)
    train(cfg)
    assert groups["translation"][0] == pytest.approx(5e-4) and groups["lora_B"][0] == 1e-3
    assert groups["w_d"][0] == 0 and groups["conditioning"][0] == 0
    moved = {name: any(not torch.equal(start, p) for start, p in zip(starts, live, strict=True))
             for name, (_, live, starts) in groups.items()}
    assert not moved["w_d"] and not moved["conditioning"]
    assert moved["translation"] and moved["lora_B"] and moved["modulation"]


def test_a_research_option_reaches_the_training_step_and_the_export(tiny_train, tmp_path):
    """`drafts=0.5` (l2d.research) goes from the command line to the path's training forward (the same seed trains
    differently) and is recorded in the export's config and card."""
    row = "| drafts | 0.5 of training x_t"
    paper = train(tiny_train("seed=0", output_dir=tmp_path / "paper"))
    extended = train(tiny_train("seed=0", "drafts=0.5", output_dir=tmp_path / "drafts"))
    assert extended["train/loss"] != paper["train/loss"]
    assert L2DModel.from_pretrained(tmp_path / "drafts" / "export").config.research == {"drafts": 0.5}
    assert L2DModel.from_pretrained(tmp_path / "paper" / "export").config.research == {}
    assert row in (tmp_path / "drafts" / "export" / "README.md").read_text()
    assert row.split(" 0.5")[0] not in (tmp_path / "paper" / "export" / "README.md").read_text()


@pytest.mark.parametrize("at_1, verdict", [(0.25, "it reads x_t"), (0.75, "barely reads x_t")])
def test_the_summary_states_the_health_ratio(at_1, verdict):
    from l2d.train import summary

    metrics = {"method": "l2d_lora", "global_step": 3, "wall_seconds": 60.0, "val/loss_at_t0": 3.0,
               "val/loss_at_t0.25": 1.0, "val/loss_at_t1": at_1, "val/health_ratio": at_1 / 1.0}
    line = next(line for line in summary(metrics, None).splitlines() if line.startswith("health"))
    assert f"= {at_1:.2f}" in line and verdict in line
