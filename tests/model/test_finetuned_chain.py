"""L2D trained on a finetuned model (the paper's "L2D from LoRA ft."): the export records the chain
base -> lora/full export -> diffusion path, loading rebuilds it, and a chain that no longer matches is refused."""

import json

import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.export import read_export
from l2d.model.checkpoint import CONFIG_FILE
from l2d.model.finetune import Finetune, finetuned_base
from l2d.model.origin import origin_of
from l2d.model.tiny import tiny_model
from tests.tiny import fit_at_t1


def save_lora(directory, scale=0.3, seed=0):
    lora = Finetune(tiny_model()[0], lora_rank=4, target_modules=["q_proj", "o_proj", "up_proj"])
    torch.manual_seed(seed)
    with torch.no_grad():
        for _, p in lora.trainable_named_parameters():
            p.add_(torch.randn_like(p) * scale)  # LoRA B starts at zero: move it so the merge matters
    lora.save_pretrained(directory)


def test_l2d_on_a_finetuned_model_rebuilds_its_chain(tmp_path):
    save_lora(tmp_path / "lora")
    finetuned = finetuned_base(tiny_model()[0], tmp_path / "lora")
    model = L2DModel(finetuned, L2DConfig(dim=16, lora_rank=4)).eval()
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(tmp_path / "l2d")
    chain = json.loads((tmp_path / "l2d" / CONFIG_FILE).read_text())["config"]["finetuned"]
    assert chain["path"] == str((tmp_path / "lora").resolve()) and chain["method"] == "lora"
    assert chain["base_model"].startswith("tiny:") and len(chain["sha256"]) == 64

    restored = L2DModel.from_pretrained(tmp_path / "l2d")  # loads the tiny base, then the LoRA, then the path
    ids = torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(1))
    raw = tiny_model()[0]
    with torch.no_grad():
        torch.manual_seed(0)
        expected = model(ids, timesteps=0.7).logits
        torch.manual_seed(0)
        assert torch.equal(restored(ids, timesteps=0.7).logits, expected)
        # at t = 0 it is the finetuned model, not the raw base
        assert torch.equal(restored(ids, timesteps=0.0).logits, finetuned(ids).logits)
        assert not torch.allclose(finetuned(ids).logits, raw(ids).logits)


def test_a_chain_that_no_longer_matches_is_refused(tmp_path):
    save_lora(tmp_path / "lora")
    model = L2DModel(finetuned_base(tiny_model()[0], tmp_path / "lora"), L2DConfig(dim=16, lora_rank=4))
    model.save_pretrained(tmp_path / "l2d")
    with pytest.raises(ValueError, match="without finetuning"):
        L2DModel.from_pretrained(tmp_path / "l2d", base=tiny_model()[0])
    save_lora(tmp_path / "lora", seed=1)  # the LoRA export was retrained in place
    with pytest.raises(ValueError, match="differs from the one this L2D checkpoint was trained on"):
        L2DModel.from_pretrained(tmp_path / "l2d")


def test_a_finetuned_export_of_another_base_is_refused(tmp_path):
    save_lora(tmp_path / "lora")
    other = tiny_model(seed=1)[0]
    with pytest.raises(ValueError, match="was trained on base"):
        finetuned_base(other, tmp_path / "lora")
    with pytest.raises(FileNotFoundError, match="not a lora/full export"):
        finetuned_base(other, tmp_path)


@pytest.mark.parametrize("held", [False, True])
def test_the_path_learns_to_read_x_t_on_a_finetuned_model(tmp_path, held):
    """On a finetuned base, with w_d learned or held open at its start (module.lr_multipliers={w_d:0,
    conditioning:0}, the sweep's on-LoRA run), training at t = 1 takes the loss far below the finetuned model's
    own, which t = 0 keeps to the bit. With w_d held closed instead (the zero start, w_d = 0) nothing can learn:
    the check can fail."""
    save_lora(tmp_path / "lora")
    finetuned = finetuned_base(tiny_model()[0], tmp_path / "lora")
    ids = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(5))

    def train(start):
        torch.manual_seed(0)
        model = L2DModel(finetuned, L2DConfig(dim=16, lora_rank=8, start=start)).train()
        frozen = ("w_d", "conditioning") if held or start == "zero" else ()
        fit_at_t1(model, ids, [p for group, ps in model.trainable_groups().items() if group not in frozen for p in ps],
                  steps=150)
        with torch.no_grad():
            return model(ids, labels=ids, timesteps=1.0).loss, model(ids, labels=ids, timesteps=0.0).loss

    with torch.no_grad():
        own = finetuned(ids, labels=ids).loss
    at_1, at_0 = train("mirror")
    assert at_1 < 0.3 * own, (float(own), float(at_1))
    torch.testing.assert_close(at_0, own, rtol=1e-6, atol=1e-6)
    closed_at_1, _ = train("zero")
    torch.testing.assert_close(closed_at_1, own, rtol=1e-6, atol=1e-6)


def save_full(directory, base):
    """A full finetune of `base` with moved weights."""
    full = Finetune(base, lora_rank=0)
    with torch.no_grad():
        for _, p in full.trainable_named_parameters():
            p.add_(torch.randn_like(p, generator=torch.Generator().manual_seed(0)) * 0.01)
    full.save_pretrained(directory)


def test_provenance_is_the_exports_record_not_the_hugging_face_config(tmp_path):
    """The chain lives in each export's own record, read back by l2d.export: a full export's config.json (the Hugging
    Face config, which transformers saves whole) carries none of it, also when it stands on a finetuned model."""
    save_lora(tmp_path / "lora")
    save_full(tmp_path / "full", finetuned_base(tiny_model()[0], tmp_path / "lora"))
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    assert not [key for key in config if key.startswith("l2d")]
    L2DModel(finetuned_base(tiny_model()[0], tmp_path / "full"), L2DConfig(dim=16, lora_rank=4)).save_pretrained(
        tmp_path / "l2d")
    export = read_export(tmp_path / "l2d")
    assert (export.l2d, export.method, export.base_model) == (True, "l2d_lora", origin_of(tiny_model()[0]).name)
    assert [(link["stage"], link.get("method")) for link in export.provenance()] == [
        ("base", None), ("finetuned", "lora"), ("finetuned", "full"), ("l2d_lora", None)]
    assert [link["path"] for link in export.provenance()[1:]] == [
        str((tmp_path / name).resolve()) for name in ("lora", "full")] + [str(tmp_path / "l2d")]


def test_an_older_full_export_with_its_chain_in_config_json_still_loads(tmp_path):
    """Exports before l2d.model.origin kept the chain in the Hugging Face config, so a full export's config.json
    holds it: it still loads as recorded, and the stale keys go no further."""
    save_full(tmp_path / "full", tiny_model()[0])
    config_file = tmp_path / "full" / "config.json"
    config = json.loads(config_file.read_text())
    config.update(l2d_name_or_path="an older name", l2d_finetuned={"path": "/gone", "sha256": "0" * 64})
    config_file.write_text(json.dumps(config))
    digest = tmp_path / "full" / "l2d_digest.json"
    digest.unlink()  # as written before digests (the digest would refuse the edit)
    info = tmp_path / "full" / "l2d_finetune.json"
    info.write_text(json.dumps({key: value for key, value in json.loads(info.read_text()).items() if key != "version"}))
    model = finetuned_base(tiny_model()[0], tmp_path / "full")
    assert origin_of(model).finetuned["path"] == str((tmp_path / "full").resolve())
    assert not hasattr(model.config, "l2d_finetuned") and not hasattr(model.config, "l2d_name_or_path")
    l2d = L2DModel(model, L2DConfig(dim=16, lora_rank=4))
    assert l2d.config.base_model.startswith("tiny:") and l2d.config.finetuned == origin_of(model).finetuned
