"""Drafts (l2d.research.drafts): training x_t that shows the frozen LM's own guess of a token instead of the token."""

import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.diffusion.path import add_noise
from l2d.research import Drafts
from tests.tiny import tiny_base, tiny_l2d_far_from_lm


def tiny_l2d(drafts: float) -> L2DModel:
    torch.manual_seed(0)
    return L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4, research={"drafts": drafts}))


def ids_and_slots(model: L2DModel, rows: int = 2, length: int = 6):
    ids = torch.randint(0, 256, (rows, length), generator=torch.Generator().manual_seed(1))
    return ids, model.supervised_slots(ids, None, ids, None)


def test_drafts_are_drawn_from_the_lm_at_their_share():
    model = tiny_l2d(drafts=0.3)
    _, slots = ids_and_slots(model, rows=1, length=2)  # one slot
    target = slots.targets.clamp_min(0)
    probs = torch.softmax(model.lm_logits(slots.context.hidden).float(), dim=-1)[0, 0]
    generator = torch.Generator().manual_seed(2)
    draws = torch.cat([Drafts(0.3).drafted(model, slots, generator).flatten() for _ in range(4000)])
    # a token other than the target is shown only as a draft: 0.3 of its LM probability
    expected = 0.3 * probs
    expected[target[0, 0]] += 0.7
    observed = torch.bincount(draws, minlength=probs.numel()).float() / draws.numel()
    std = (expected * (1 - expected) / draws.numel()).sqrt()
    top = expected.topk(5).indices
    assert expected[top[1]] > 0.01  # the LM spreads its drafts over several tokens, so the check has teeth
    assert ((observed[top] - expected[top]).abs() < 5 * std[top] + 1e-3).all(), (observed[top], expected[top])


def test_a_draft_replaces_the_token_in_x_t_and_keeps_the_noise_and_t():
    """x_t = t·V_draft + (1 − t)·x0 with the paper's x0 and t: the draw the path sees differs from the paper's only
    in the token it shows, and only at the drafted slots."""
    model = tiny_l2d(drafts=0.5)
    _, slots = ids_and_slots(model, rows=4, length=12)
    t = torch.rand(slots.index.shape, generator=torch.Generator().manual_seed(4))
    paper = add_noise(model.vocabulary(slots.targets.clamp_min(0)), t, model.config.sigma,
                      generator=torch.Generator().manual_seed(5))
    noisy = Drafts(0.5)(model, slots, paper, torch.Generator().manual_seed(6))
    drafted = Drafts(0.5).drafted(model, slots, torch.Generator().manual_seed(6))
    assert torch.equal(noisy.x0, paper.x0) and torch.equal(noisy.t, t)
    assert torch.equal(noisy.x_t, add_noise(model.vocabulary(drafted), t, model.config.sigma, x0=paper.x0).x_t)
    shown = drafted != slots.targets.clamp_min(0)
    assert shown.any() and (~shown).any()
    assert torch.equal(noisy.x_t[~shown], paper.x_t[~shown]) and not torch.equal(noisy.x_t[shown], paper.x_t[shown])


def test_drafts_change_training_only_and_zero_is_the_papers_training():
    model = tiny_l2d_far_from_lm(research={"drafts": 1.0})  # reads x_t (the untrained mirror start does not yet)
    ids, _ = ids_and_slots(model)
    losses = {}
    for drafts in (0.0, 1.0):
        model.config.research = {"drafts": drafts} if drafts else {}
        for mode in ("train", "eval"):
            getattr(model, mode)()
            losses[drafts, mode] = model(ids, labels=ids, timesteps=1.0,
                                         generator=torch.Generator().manual_seed(3)).loss
    assert torch.equal(losses[0.0, "train"], losses[0.0, "eval"])
    assert torch.equal(losses[1.0, "eval"], losses[0.0, "eval"])  # evaluation never drafts
    assert not torch.allclose(losses[1.0, "train"], losses[0.0, "train"])


def test_the_drafted_loss_reaches_the_diffusion_vocabulary():
    """V_draft is learned as V_y is: the gradient reaches W_v through the drafted tokens."""
    model = tiny_l2d_far_from_lm(research={"drafts": 1.0}).train()  # the mirror start does not read x_t yet
    ids, _ = ids_and_slots(model)
    model(ids, labels=ids, timesteps=0.5, generator=torch.Generator().manual_seed(3)).loss.backward()
    assert model.diffusion.vocabulary.W_v.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("share", [1.5, -0.1, "half", True])
def test_bad_drafts_name_the_field(share):
    with pytest.raises(ValueError, match="drafts must be a probability in"):
        L2DConfig(research={"drafts": share})
