"""Research options behind one interface (l2d.research): listed by the method config, off by default, applied in
training only, recorded by the export; removed ones refused in one line; exports and runs from before kept working."""

import json
import logging

import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.model.checkpoint import CONFIG_FILE
from l2d.model.digest import write_digest
from l2d.research import OPTIONS, REMOVED, SlotTransform, checked, upgrade
from tests.tiny import tiny_base, tiny_l2d_far_from_lm


def test_every_option_is_a_slot_transform_whose_docstring_states_its_measured_verdict():
    for name, option in OPTIONS.items():
        assert issubclass(option, SlotTransform) and option.name == name
        assert "Measured" in option.__doc__, name


def test_an_option_set_to_zero_is_off_and_none_is_the_papers_training():
    assert L2DConfig().research == {}
    assert checked({"drafts": 0.0}) == {} and checked(None) == {}
    assert checked({"drafts": 0.25}) == {"drafts": 0.25}


def test_an_unknown_or_removed_option_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"research.draft: not a research option; known: drafts$"):
        L2DConfig(research={"draft": 0.5})
    with pytest.raises(ValueError, match="chain_states .* was removed: measured harmful") as refused:
        L2DConfig(research={"chain_states": 0.5})
    assert "\n" not in str(refused.value) and "needs l2d at commit" in str(refused.value)


def test_an_identity_option_trains_exactly_as_the_paper(monkeypatch):
    """The hook sits where the paper's draw is made: an option that returns the draw it gets changes nothing, to the
    bit, and one that moves every slot to t = 1 is what the path then sees."""
    seen = []

    class Identity(SlotTransform):
        name = "identity"

        def __call__(self, model, slots, noisy, generator):
            seen.append(noisy)
            return noisy

        def describe(self):
            return "nothing"

    monkeypatch.setitem(OPTIONS, "identity", Identity)
    model = tiny_l2d_far_from_lm().train()
    ids = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(1))
    paper = model(ids, labels=ids, generator=torch.Generator().manual_seed(3))
    model.config.research = {"identity": True}
    same = model(ids, labels=ids, generator=torch.Generator().manual_seed(3))
    assert torch.equal(same.token_losses, paper.token_losses) and torch.equal(same.timesteps, paper.timesteps)
    assert len(seen) == 1 and torch.equal(seen[0].t, paper.timesteps)
    model.eval()(ids, labels=ids)
    assert len(seen) == 1  # evaluation never applies an option


def legacy(config: dict, drafts=0.0, chain_states=0.0) -> dict:
    """An L2DConfig as exports and run fingerprints recorded it before l2d.research."""
    old = {key: value for key, value in config.items() if key != "research"}
    return {**old, "drafts": drafts, "chain_states": chain_states, "chain_levels": [2, 4, 8]}


def test_old_records_read_as_research_options(caplog):
    fields = L2DConfig().to_dict()
    assert upgrade(legacy(fields)) == fields
    assert upgrade(legacy(fields, drafts=0.5))["research"] == {"drafts": 0.5}
    # a resumed run that trained with a removed option keeps it, so that its fingerprint differs and it is refused
    assert upgrade(legacy(fields, chain_states=0.5), keep_removed=True)["research"] == {"chain_states": 0.5}
    with caplog.at_level(logging.WARNING):
        assert upgrade(legacy(fields, chain_states=0.5))["research"] == {}  # an export still decodes
    assert "chain_states=0.5, an option since removed" in caplog.text


def test_an_export_written_before_research_options_loads(tmp_path):
    base = tiny_base()
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4, research={"drafts": 0.5}))
    model.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    meta["config"] = legacy(meta["config"], drafts=0.5)
    (tmp_path / CONFIG_FILE).write_text(json.dumps(meta))
    write_digest(tmp_path)
    loaded = L2DModel.from_pretrained(tmp_path, base=base)
    assert loaded.config.research == {"drafts": 0.5}
    ids = torch.randint(0, 256, (1, 5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(ids, timesteps=0.7).logits, model.eval()(ids, timesteps=0.7).logits)


def test_each_removed_option_says_why_and_where_it_still_is():
    for name, why in REMOVED.items():
        assert name in why and "docs/research.md" in why and "commit" in why
