"""Chain states (L2DConfig.chain_states): training (x_t, t) taken from the path's own decoding chain."""

import pytest
import torch

from l2d import L2DConfig
from l2d.model.generate import DecodeOptions
from l2d.rl.rollout import rollout
from tests.tiny import tiny_l2d_far_from_lm

LEVELS = 4


def last_slot(length: int = 8):
    """A sequence whose only supervised slot is its next-to-last position (it predicts the last token)."""
    ids = torch.randint(0, 256, (1, length), generator=torch.Generator().manual_seed(1))
    labels = torch.full_like(ids, -100)
    labels[0, -1] = ids[0, -1]
    return ids, labels


def test_chain_states_are_the_states_decoding_visits():
    """Every training state is the input of one evaluation of the decoder's own chain for that slot: same noise,
    same grid, argmax x̂, the t = 0 evaluation (the frozen LM) left out; each of them is picked."""
    model = tiny_l2d_far_from_lm(chain_states=1.0, chain_levels=[LEVELS]).train()
    with torch.no_grad():  # a path that overrides the LM, so its chains change their guess on the way
        for name, parameter in model.trainable_named_parameters():
            if name.startswith("fusion."):
                parameter.mul_(20)
    ids, labels = last_slot()
    slots = model.supervised_slots(ids, None, labels, None)
    seen, changed = set(), 0
    for seed in range(12):
        trained = torch.Generator().manual_seed(seed)
        x_t, t = model.chain_states(slots, torch.zeros(1, 1, model.config.dim), torch.zeros(1, 1), trained)
        decoded = torch.Generator().manual_seed(seed)
        torch.randint(1, (), generator=decoded)  # the draw that chose the level count
        run = rollout(model.eval(), ids[:, :-1], torch.ones_like(ids[:, :-1]),
                      DecodeOptions(levels=LEVELS, x1_temperature=0.0), temperature=0.0, max_new_tokens=1,
                      stop_ids=[], pad_id=0, generator=decoded)
        model.train()
        assert run.times[0] == 0.0 and len(run.times) == 2 * (LEVELS - 1) + 1
        evaluation = min(range(len(run.times)), key=lambda e: abs(run.times[e] - float(t)))
        assert abs(run.times[evaluation] - float(t)) < 1e-6
        assert evaluation > 0
        assert torch.allclose(x_t[0, 0], run.states[0, 0, evaluation], atol=1e-5)
        seen.add(evaluation)
        changed += len(set(run.actions[0, 0, :-1].tolist())) > 1
    assert len(seen) >= 4  # the pick ranges over the chain, not one evaluation
    assert changed  # some chains change their guess on the way, so states differ in the token they show


def test_chain_states_take_their_share_of_supervised_slots():
    model = tiny_l2d_far_from_lm(chain_states=0.3).train()
    ids = torch.randint(0, 256, (8, 40), generator=torch.Generator().manual_seed(2))
    labels = ids.clone()
    labels[:, :5] = -100
    slots = model.supervised_slots(ids, None, labels, None)
    t = torch.full(slots.index.shape, 0.123)
    _, chain_t = model.chain_states(slots, torch.zeros(*t.shape, model.config.dim), t, torch.Generator().manual_seed(3))
    replaced = chain_t != 0.123
    supervised = slots.targets != -100
    assert not replaced[~supervised].any()
    share = replaced[supervised].float().mean()
    assert abs(share - 0.3) < 0.06, share


def test_chain_states_change_training_only_and_zero_is_the_papers_training():
    model = tiny_l2d_far_from_lm()
    ids = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(1))
    losses = {}
    for share in (0.0, 1.0):
        model.config.chain_states = share
        for mode in ("train", "eval"):
            getattr(model, mode)()
            losses[share, mode] = model(ids, labels=ids, generator=torch.Generator().manual_seed(3)).loss
    assert torch.equal(losses[0.0, "train"], losses[0.0, "eval"])
    assert torch.equal(losses[1.0, "eval"], losses[0.0, "eval"])  # evaluation never takes chain states
    assert not torch.allclose(losses[1.0, "train"], losses[0.0, "train"])


def test_bad_chain_settings_name_the_field():
    with pytest.raises(ValueError, match="chain_states must be a probability in"):
        L2DConfig(chain_states=-0.1)
    with pytest.raises(ValueError, match="chain_levels must be a non-empty list of level counts >= 2"):
        L2DConfig(chain_levels=[1, 4])
