"""The RL stage on the real SmolLM2-135M weights: a few GRPO steps through the denoising chain raise the mean
reward on a reward the path can learn at once."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.lightning.reinforce import PromptDataModule, ReinforceModule
from l2d.model.loading import load_base_model

pytestmark = pytest.mark.slow

VOWELS = set("AEIOU")  # a set: the empty first character of an empty completion is not in it


class VowelTask:
    """'Reply with one random capital letter': a completion earns 1 when it starts with a vowel. The base answers
    with a spread of letters, so the groups differ and the reward is learnable from the first emitted token alone."""

    name = "vowel"

    def __init__(self, count: int):
        self._problems = [{"id": str(i), "question": f"Reply with one random capital letter, nothing else. ({i})",
                           "target": None} for i in range(count)]

    def problems(self, limit=None):
        return self._problems

    def messages(self, problem):
        return [{"role": "user", "content": problem["question"]}]

    def score_all(self, problems, generations):
        passed = [[text.strip()[:1] in VOWELS for text in texts] for texts in generations]
        return [{"passed": p, "correct": p[0], "extracted": True} for p in passed]


def test_a_few_rl_steps_raise_the_mean_reward_on_real_weights():
    base, tokenizer = load_base_model("smollm2-135m")
    torch.manual_seed(0)
    model = L2DModel(base, L2DConfig(lora_rank=8)).train()
    module = ReinforceModule(model, tokenizer, VowelTask(8), VowelTask(1),
                             optimizer=partial(torch.optim.AdamW, lr=1e-3), prompts_per_step=2, group_size=8,
                             levels=(2,), max_new_tokens=2, actions_per_token=3, validation_levels=(2,),
                             validation_batch_size=1)
    held_out = range(1000, 1004)  # rollout numbers never trained on: the same prompts and noise before and after

    def mean_reward() -> float:
        with torch.no_grad():
            return torch.cat([module.roll_out(number)[1].flatten() for number in held_out]).mean().item()

    before = mean_reward()
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, accelerator="cpu")
    trainer.fit(module, datamodule=PromptDataModule(6, 1, 1))
    after = mean_reward()
    assert after >= before + 0.5, (before, after)  # measured: 0.22 -> 1.0 (CPU)
