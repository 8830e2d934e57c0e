"""Exports people can share: a model card (README.md, the hub's layout) beside the weights, and loading
that refuses a base other than the recorded one."""

import json

import pytest
import torch
from huggingface_hub import ModelCard

from l2d import L2DConfig, L2DModel
from l2d.model.card import CARD_FILE, TrainingRecord, front_matter, hub_id
from l2d.model.checkpoint import check_base, read_meta
from l2d.model.finetune import FINETUNE_FILE, Finetune
from l2d.model.tiny import tiny_model
from tests.tiny import tiny_base

RECORD = TrainingRecord(data=["`GSM8KSource` path=null"], steps=1234, examples=6973, val_examples=500,
                        losses={"val/loss": 1.5, "val/loss_at_t0": 2.25, "val/loss_at_t0.5": 1.75,
                                "val/loss_at_t1": 0.5, "val/loss_t_bin0": 2.0, "val/loss_t_bin1": 1.0,
                                "train/loss": 1.25},
                        command="python -m l2d.train data=gsm8k")


def card(directory):
    """(front matter, body) of an export's README.md, read as the hub reads it."""
    assert (directory / CARD_FILE).read_text().startswith("---\n")
    loaded = ModelCard.load(directory / CARD_FILE)
    return loaded.data.to_dict(), loaded.text


def l2d_model(**config):
    return L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4, sigma=32, **config))


def test_l2d_export_has_a_hub_card_with_the_method_and_the_run(tmp_path):
    l2d_model(start="mirror", num_classes=2, class_names=["math", "code"]).save_pretrained(tmp_path / "export",
                                                                                           training=RECORD)
    meta, body = card(tmp_path / "export")
    assert meta["library_name"] == "l2d" and {"l2d", "diffusion", "lora"} <= set(meta["tags"])
    assert "base_model" not in meta  # a random test model has no hub id
    for row in ("| σ (noise std of x0) | 32 |", "| d̄ (diffusion token width) | 16 |", "| LoRA rank | 4 |",
                "| start | `mirror` |", "| guidance classes | `math`, `code` |", "| optimizer steps | 1,234 |",
                "| examples | 6,973 training, 500 validation |", "`GSM8KSource` path=null",
                "`python -m l2d.train data=gsm8k`"):
        assert row in body, row
    assert "| t | 0 | 0.5 | 1 |\n|---|---|---|---|\n| loss | 2.2500 | 1.7500 | 0.5000 |" in body
    assert "| t | 0.0–0.5 | 0.5–1.0 |" in body and "validation 1.5000, training (last step) 1.2500" in body
    assert "python -m l2d.evaluate checkpoint=l2d-export task=gsm8k guidance=1.5" in body
    assert "L2DModel.from_pretrained(\"l2d-export\", base=base)" in body


def test_card_without_a_training_record_says_so(tmp_path):
    l2d_model().save_pretrained(tmp_path / "export")
    _, body = card(tmp_path / "export")
    assert "not recorded (saved from Python" in body and "## Final losses" not in body
    assert "| guidance classes | none |" in body


@pytest.mark.parametrize("name, expected", [
    ("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ("meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-1B-Instruct"),
    ("tiny:layers=2,width=64", None), ("weights/model.gguf", None), (None, None),
])
def test_front_matter_names_hub_models_only(name, expected, tmp_path):
    assert hub_id(name) == expected
    assert hub_id(str(tmp_path)) is None  # an existing local directory
    assert (f"base_model: {expected}\n" in front_matter(name, "l2d", ["l2d"])) == (expected is not None)


@pytest.mark.parametrize("lora_rank, library", [(4, "peft"), (0, "transformers")])
def test_baseline_export_card_replaces_the_template(lora_rank, library, tmp_path):
    Finetune(tiny_model()[0], lora_rank=lora_rank).save_pretrained(tmp_path / "export", training=RECORD)
    meta, body = card(tmp_path / "export")
    assert meta["library_name"] == library and "baseline" in meta["tags"]
    assert ("| LoRA rank | 4 |" if lora_rank else "| LoRA rank | — (full finetuning) |") in body
    assert "| optimizer steps | 1,234 |" in body and "finetuned_base(base, \"l2d-export\")" in body
    assert (tmp_path / "export" / FINETUNE_FILE).is_file()


def test_a_base_of_the_same_architecture_with_other_weights_is_refused(tmp_path):
    l2d_model().save_pretrained(tmp_path / "export")
    with pytest.raises(ValueError, match="has its architecture but other weights"):
        L2DModel.from_pretrained(tmp_path / "export", base=tiny_base(seed=1))
    meta = read_meta(tmp_path / "export")
    check_base(meta, tiny_base().to(torch.bfloat16), tmp_path / "export")  # the same weights, rounded: accepted
    restored = L2DModel.from_pretrained(tmp_path / "export", base=tiny_base())
    assert restored.config.sigma == 32


def test_checkpoints_without_a_sketch_still_load(tmp_path, caplog):
    """Exports written before the sketch existed (format version 1, no digest) are checked by architecture only,
    and loading says so."""
    l2d_model().save_pretrained(tmp_path / "export")
    config = tmp_path / "export" / "l2d_config.json"
    meta = json.loads(config.read_text())
    del meta["base_probe"]
    config.write_text(json.dumps({**meta, "version": 1}))
    (tmp_path / "export" / "l2d_digest.json").unlink()
    assert L2DModel.from_pretrained(tmp_path / "export", base=tiny_base(seed=1)).config.dim == 16
    assert "checked by architecture only" in caplog.text and "before exports carried a digest" in caplog.text
