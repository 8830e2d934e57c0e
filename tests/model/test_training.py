"""The diffusion path learns to read x_t, while the loss at t = 0 stays the base model's."""

import torch

from l2d import L2DConfig, L2DModel
from tests.tiny import fit_at_t1, tiny_base


def test_overfit_at_t1_drives_loss_to_zero_while_t0_is_unchanged():
    torch.manual_seed(0)
    base = tiny_base()
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=8)).train()
    ids = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        base_loss = base(ids, labels=ids).loss
        start_t1 = model(ids, labels=ids, timesteps=1.0).loss
    fit_at_t1(model, ids, [p for _, p in model.trainable_named_parameters()], steps=300)
    with torch.no_grad():
        end_t1 = model(ids, labels=ids, timesteps=1.0).loss
        end_t0 = model(ids, labels=ids, timesteps=0.0).loss
    assert start_t1 > 3.0
    assert end_t1 < 0.1, end_t1
    torch.testing.assert_close(end_t0, base_loss, rtol=1e-6, atol=1e-6)


def test_each_supervised_position_draws_its_own_timestep():
    model = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4, num_classes=3, class_dropout=0.5)).train()
    ids = torch.randint(0, 256, (2, 20))
    labels = ids.clone()
    labels[:, :6] = -100
    out = model(ids, labels=labels, class_labels=torch.tensor([1, 3]))
    assert out.valid.sum() == 2 * 14  # positions 5..18 predict labels 6..19
    assert out.timesteps[out.valid].unique().numel() == out.valid.sum()
    assert torch.isfinite(out.loss)
    assert torch.equal(out.positions[0][out.valid[0]], torch.arange(5, 19))
