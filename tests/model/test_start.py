"""The two starts of the diffusion path: the reference's closed `zero` start and the open `mirror` start.

The mirror start is also the strongest wiring check of the path: with its gates open and nothing
learned yet, the diffusion path recomputes the LM at each slot from the LM's own keys and values, so
any mismatch of RoPE position, mask, scale or layer order between the two paths shows up as a
difference from the base model's logits.
"""

import pytest
import torch

from l2d import L2DConfig, L2DModel
from tests.model.test_exactness import left_padded_batch
from tests.tiny import tiny_base


def base_logits(base, ids, mask):
    return base(ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0)).logits


@pytest.mark.parametrize("t", [0.3, 1.0])
def test_mirror_start_recomputes_the_base_at_every_t(family, t):
    base = tiny_base(family)
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4, start="mirror"))
    ids, mask = left_padded_batch()
    with torch.no_grad():
        out = model(ids, mask, timesteps=t)
        reference = base_logits(base, ids, mask)
        exact = model(ids, mask, timesteps=0.0)
    w_d = model.diffusion.condition(torch.tensor([[t]]), None).fusion()
    assert w_d.min() > 0.5 * t and torch.allclose(w_d, w_d.mean().expand_as(w_d), rtol=1e-4)  # open, equal channels
    for row in range(ids.shape[0]):
        real = mask[row].bool()
        torch.testing.assert_close(out.logits[row][out.valid[row]], reference[row][real], rtol=1e-4, atol=1e-4)
        assert torch.equal(exact.logits[row][exact.valid[row]], reference[row][real])  # t = 0 stays exact


def test_mirror_start_breaks_if_the_path_reads_the_wrong_keys():
    """The check above can fail: shifting the queries' RoPE positions by one changes the logits."""
    base = tiny_base()
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4, start="mirror"))
    ids, mask = left_padded_batch()
    with torch.no_grad():
        reference = base_logits(base, ids, mask)
        original = model.context

        def shifted(cache, layers, hidden, tokens, index, position, key_mask):
            return original(cache, layers, hidden, tokens, index, position + 1, key_mask)

        model.context = shifted
        out = model(ids, mask, timesteps=1.0)
    assert not torch.allclose(out.logits[0][out.valid[0]], reference[0][mask[0].bool()], atol=1e-3)


def gradient_groups(start: str) -> dict[str, float]:
    base = tiny_base()
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4, start=start)).train()
    ids, mask = left_padded_batch()
    torch.manual_seed(0)
    model(ids, mask, labels=ids).loss.backward()
    return {group: float(sum(p.grad.norm() ** 2 for p in params if p.grad is not None))
            for group, params in model.trainable_groups().items()}


def test_zero_start_reaches_only_w_d_at_the_first_step():
    norms = gradient_groups("zero")
    assert norms["w_d"] > 0
    assert all(norms[group] == 0 for group in norms if group != "w_d")


def test_mirror_start_reaches_the_whole_path_at_the_first_step():
    norms = gradient_groups("mirror")
    # LoRA A and the diffusion vocabulary sit behind LoRA B and the zero translation output: one step later
    for group in ("w_d", "modulation", "translation", "lora_B", "conditioning"):
        assert norms[group] > 0, group


def test_unknown_start_is_refused():
    with pytest.raises(ValueError, match="start must be one of"):
        L2DConfig(start="open")
