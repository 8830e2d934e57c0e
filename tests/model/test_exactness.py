"""At t = 0 (and levels = 1) L2D is exactly the base model, for every family: in float32, in bfloat16 (a base
loaded in it, as evaluation does), and as bf16-mixed training runs it (the frozen base stored in bfloat16, the
path's parameters float32, under autocast)."""

import contextlib

import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.diffusion.path import sample_timesteps
from l2d.model import l2d as l2d_module
from l2d.model.dtypes import store_frozen
from tests.tiny import tiny_base

# (frozen base, diffusion path, autocast): how each precision holds the model
PRECISIONS = {"float32": (torch.float32, torch.float32, False), "bfloat16": (torch.bfloat16, torch.bfloat16, False),
              "bf16-mixed": (torch.bfloat16, torch.float32, True)}


def in_precision(model, name: str):
    """The model as `name` holds it, and the context its passes run in."""
    frozen, path, autocast = PRECISIONS[name]
    model.diffusion.to(path)
    store_frozen(model, frozen)
    assert all(p.dtype == path for _, p in model.trainable_named_parameters())
    assert all(p.dtype == frozen for p in model.base.parameters())
    return torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()


def left_padded_batch(seed=1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 256, (3, 11), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    mask[2, :7] = 0
    return ids, mask


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
def test_logits_at_t0_equal_base_to_the_bit(family, precision):
    base = tiny_base(family)
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4))
    # Move every diffusion parameter off its initial zeros, so exactness is not an artefact of init.
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ids, mask = left_padded_batch()
    with torch.no_grad(), in_precision(model, precision):
        out = model(ids, mask, timesteps=0.0)
        reference = base(ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0)).logits
        moved = model(ids, mask, timesteps=0.5)
    for row in range(ids.shape[0]):
        real = mask[row].bool()
        slots = out.positions[row][out.valid[row]]
        assert torch.equal(slots, torch.nonzero(real).flatten())
        assert torch.equal(out.logits[row][out.valid[row]], reference[row][real])
    # and away from t = 0 the diffusion path does change the prediction
    assert not torch.allclose(moved.logits[0], out.logits[0])


def test_greedy_levels1_generation_equals_base_generate(family):
    base = tiny_base(family)
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4))
    ids, mask = left_padded_batch(seed=2)
    ours = model.generate(ids, mask, max_new_tokens=8, levels=1, temperature=0.0)
    theirs = base.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
def test_loss_at_t0_is_the_base_cross_entropy(precision):
    base = tiny_base()
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4))
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(3))
    labels = ids.clone()
    labels[:, :5] = -100
    with torch.no_grad(), in_precision(model, precision):
        ours = model(ids, labels=labels, timesteps=0.0).loss
        theirs = base(ids, labels=labels).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_store_frozen_casts_only_the_frozen_parameters():
    """bf16-mixed training stores the frozen base in bfloat16; what trains stays float32 (AdamW's master
    weights), and so do the buffers (RoPE's frequencies), so the base in bfloat16 is the one evaluation loads."""
    model = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4))
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert store_frozen(model, "bfloat16") == frozen > 0
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {torch.bfloat16}
    assert {p.dtype for _, p in model.trainable_named_parameters()} == {torch.float32}
    for name, b in model.named_buffers():
        assert b.dtype == buffers[name].dtype and torch.equal(b, buffers[name])
    assert store_frozen(model, torch.bfloat16) == 0  # already stored: nothing to do


def test_losses_at_reuse_one_main_pass_with_the_same_positions_and_noise():
    base = tiny_base()
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4)).eval()
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(3))
    labels = ids.clone()
    labels[:, :5] = -100
    times = (0.0, 0.5, 1.0)
    curve = model.losses_at(ids, labels=labels, timesteps=times, generator=torch.Generator().manual_seed(5))
    again = model.losses_at(ids, labels=labels, timesteps=times, generator=torch.Generator().manual_seed(5))
    assert [c.loss for c in curve] == [a.loss for a in again]
    with torch.no_grad():
        torch.testing.assert_close(curve[0].loss, base(ids, labels=labels).loss, rtol=1e-6, atol=1e-6)
        for t, point in zip(times, curve, strict=True):
            torch.manual_seed(5)  # forward draws x0 from the global stream: the same numbers
            torch.testing.assert_close(model(ids, labels=labels, timesteps=t).loss, point.loss)
    assert curve[1].loss != curve[2].loss


def test_losses_at_in_one_batched_pass_equal_one_pass_per_t_and_the_sampled_loss_is_forwards(monkeypatch):
    """Validation's shared passes: the fixed-t losses do not depend on how many t share a diffusion pass,
    and the loss at sampled t (sampled=True) is forward's at those t with that noise."""
    model = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4)).eval()
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ids = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(3))
    labels = ids.clone()
    labels[:, :5] = -100
    labels[1, 9:] = -100  # ragged: row 1 has fewer supervised slots
    times = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
    batched = model.losses_at(ids, labels=labels, timesteps=times, generator=torch.Generator().manual_seed(5),
                              sampled=True)
    monkeypatch.setattr(l2d_module, "LOGITS_PER_PASS", 1)  # one t per pass
    alone = model.losses_at(ids, labels=labels, timesteps=times, generator=torch.Generator().manual_seed(5),
                            sampled=True)
    assert len(batched) == len(alone) == len(times) + 1
    for ours, theirs in zip(batched, alone, strict=True):
        torch.testing.assert_close(ours.token_losses, theirs.token_losses)
        torch.testing.assert_close(ours.logits, theirs.logits)
    fixed = model.losses_at(ids, labels=labels, timesteps=times, generator=torch.Generator().manual_seed(5))
    assert [f.loss for f in fixed] == [b.loss for b in batched[1:]]

    sampled = batched[0]
    valid_t = sampled.timesteps[sampled.valid]
    assert ((valid_t > 0) & (valid_t < 1)).all() and valid_t.unique().numel() == valid_t.numel()
    generator = torch.Generator().manual_seed(5)
    torch.randn((*sampled.positions.shape, 16), generator=generator)  # the fixed-t noise, drawn first
    sample_timesteps(sampled.positions.shape, model.config.timestep_sampling, generator=generator)
    t = torch.zeros(ids.shape).scatter(1, sampled.positions, sampled.timesteps)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, labels=labels, timesteps=t, generator=generator).loss, sampled.loss)
