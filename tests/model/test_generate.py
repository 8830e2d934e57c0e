"""Decoding: NFE accounting, main-path forwards, guidance, adaptive per-sequence steps."""

from contextlib import contextmanager

import pytest
import torch
from torch._dynamo.utils import counters

from l2d.model.generate import DecodeOptions, Decoder
from l2d.model.token_search import token_search
from tests.tiny import decode_prompts, tiny_base, tiny_l2d_far_from_lm


@pytest.fixture(scope="module")
def model():
    return tiny_l2d_far_from_lm(num_classes=2)


@contextmanager
def rows_evaluated(model):
    """The number of rows of each diffusion-path evaluation, in order."""
    counts = []
    hook = model.diffusion.register_forward_pre_hook(lambda module, args: counts.append(args[0].shape[0]))
    try:
        yield counts
    finally:
        hook.remove()


@pytest.mark.parametrize("solver, levels, nfe", [("midpoint", 8, 15), ("midpoint", 2, 3), ("midpoint", 16, 31),
                                                 ("euler", 15, 15), ("euler", 4, 4), ("rk4", 3, 9),
                                                 ("midpoint", 1, 1)])
def test_fixed_solver_nfe_per_token_and_one_main_forward_per_token(model, solver, levels, nfe):
    ids, mask = decode_prompts()
    sequences, stats = model.generate(ids, mask, max_new_tokens=5, solver=solver, levels=levels, return_stats=True)
    assert sequences.shape == (3, 12)
    assert stats.nfe_per_token.shape == (3, 5)
    assert (stats.nfe_per_token == nfe).all()
    assert stats.main_forwards == 1 + 4  # prefill + one per new token after the first, whatever the NFE


def test_levels1_never_runs_the_diffusion_path(model, monkeypatch):
    calls = []
    monkeypatch.setattr(model.diffusion, "forward", lambda *a, **k: calls.append(1))
    ids, mask = decode_prompts()
    model.generate(ids, mask, max_new_tokens=3, levels=1)
    assert not calls


@pytest.mark.parametrize("solver", ["adaptive_heun", "bosh3", "fehlberg2", "dopri5"])
def test_adaptive_solvers_report_per_sequence_counts(model, solver):
    ids, mask = decode_prompts()
    # Seeded, so the outcome does not hang on the global RNG left by earlier tests; ends at 0.99 as
    # the adaptive solver configs do (the flow is stiff right at t = 1).
    _, stats = model.generate(ids, mask, max_new_tokens=3, solver=solver, x1_estimate="expectation",
                              x1_temperature=1.0, atol=1e-2, rtol=1e-2, t_final=0.99, return_stats=True,
                              generator=torch.Generator().manual_seed(3))
    assert (stats.nfe_per_token >= 4).all()  # f0, the initial-step probe, >= 1 step, final evaluation


@pytest.mark.parametrize("classes", [None, torch.tensor([1, 2, 0])])
def test_adaptive_steps_differ_between_sequences_and_cost_only_their_own_evaluations(model, classes):
    """Each row keeps its own step size (batch independence itself is tested on known ODEs), and a row whose
    integration has arrived is not evaluated while the others go on: rows evaluated = the NFE reported."""
    ids, mask = decode_prompts()
    with rows_evaluated(model) as counts:
        _, stats = model.generate(ids, mask, max_new_tokens=2, solver="bosh3", x1_estimate="expectation",
                                  x1_temperature=1.0, temperature=0.0, return_stats=True, class_labels=classes,
                                  guidance=None if classes is None else 2.0)
    assert stats.nfe_per_token.unique().numel() > 1
    assert sum(counts) == stats.nfe_per_token.sum()


def test_eos_stops_rows_and_pads_them(model):
    ids, mask = decode_prompts()
    greedy = model.generate(ids, mask, max_new_tokens=6, levels=1, temperature=0.0)
    eos = int(greedy[1, 8])  # row 1's second new token
    sequences, stats = model.generate(ids, mask, max_new_tokens=6, levels=1, temperature=0.0, eos_token_id=eos,
                                      pad_token_id=255, return_stats=True)
    row = sequences[1, 7:].tolist()
    stop = row.index(eos)
    assert all(token == 255 for token in row[stop + 1:])
    assert (stats.nfe_per_token[1, stop + 1:] == 0).all()


def test_finished_rows_leave_the_batch_and_the_rest_decode_as_in_the_full_batch(model):
    """Rows that emitted EOS stop costing evaluations; the others keep their starting noise, so greedy
    decoding emits what the full batch (the static cache keeps every row) emits."""
    ids, mask = decode_prompts()
    # x̂ as the expectation: deterministic given x, so the starting noise is the only draw and it matters.
    options = dict(max_new_tokens=6, levels=4, temperature=0.0, x1_estimate="expectation", x1_temperature=1.0)
    seeded = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731
    eos = int(model.generate(ids, mask, generator=seeded(5), **options)[1, 8])  # row 1's second new token
    with rows_evaluated(model) as counts:
        retired, stats = model.generate(ids, mask, eos_token_id=eos, pad_token_id=255, generator=seeded(5),
                                        return_stats=True, **options)
    full, full_stats = model.generate(ids, mask, eos_token_id=eos, pad_token_id=255, generator=seeded(5),
                                      return_stats=True, static_cache=True, **options)
    assert min(counts) < 3 == max(counts)
    assert torch.equal(retired, full)
    assert torch.equal(stats.nfe_per_token, full_stats.nfe_per_token)
    # Other noise, other tokens: keeping each row's noise is what the equality above checks.
    assert not torch.equal(model.generate(ids, mask, eos_token_id=eos, pad_token_id=255, generator=seeded(6),
                                          **options), retired)


def test_guidance_one_equals_plain_conditional(model):
    ids, mask = decode_prompts()
    classes = torch.tensor([1, 2, 1])
    plain = model.generate(ids, mask, max_new_tokens=4, class_labels=classes,
                           generator=torch.Generator().manual_seed(7))
    guided = model.generate(ids, mask, max_new_tokens=4, class_labels=classes, guidance=1.0,
                            generator=torch.Generator().manual_seed(7))
    assert torch.equal(plain, guided)


def test_guidance_evaluates_conditional_and_unconditional_in_one_batch(model):
    """The two query slots of a row give the same logits as two separate single-slot evaluations."""
    ids, mask = decode_prompts()
    cache_ids = ids
    from l2d.model.family import new_cache, positions_from_mask

    cache = new_cache(model.base)
    positions = positions_from_mask(mask)
    hidden = model.run_main_path(cache_ids, mask, positions, cache)[:, -1]
    batch = ids.shape[0]
    index = torch.full((batch,), ids.shape[1] - 1)
    x = torch.randn(batch, 16) * 64
    t = torch.full((batch,), 0.3)

    def logits(classes):
        slots = classes.shape[1]
        expand = lambda v: v.unsqueeze(1).expand(batch, slots, *v.shape[1:])  # noqa: E731
        context = model.context(cache, 2, expand(hidden), expand(ids[:, -1]), expand(index),
                                expand(positions[:, -1]), mask)
        return model.diffusion_logits(expand(x), expand(t), classes, context)

    both = logits(torch.tensor([[1, 0], [2, 0], [1, 0]]))
    conditional = logits(torch.tensor([[1], [2], [1]]))
    unconditional = logits(torch.zeros(3, 1, dtype=torch.long))
    torch.testing.assert_close(both[:, 0], conditional[:, 0])
    torch.testing.assert_close(both[:, 1], unconditional[:, 0])
    assert not torch.allclose(both[:, 0], both[:, 1])


def test_guided_generation_runs_and_is_seeded(model):
    ids, mask = decode_prompts()
    options = dict(max_new_tokens=3, class_labels=torch.tensor([1, 2, 2]), guidance=2.0, levels=4)
    first = model.generate(ids, mask, generator=torch.Generator().manual_seed(3), **options)
    again = model.generate(ids, mask, generator=torch.Generator().manual_seed(3), **options)
    assert torch.equal(first, again)


def test_plain_lm_decodes_alone_and_refuses_diffusion_levels():
    from l2d import CausalLM

    base = tiny_base()
    plain = CausalLM(base)
    ids, mask = decode_prompts()
    ours = plain.generate(ids, mask, max_new_tokens=5, temperature=0.0)
    assert torch.equal(ours, base.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False, pad_token_id=0))
    with pytest.raises(ValueError, match="needs an L2D model"):
        plain.generate(ids, mask, max_new_tokens=2, levels=8)


@pytest.mark.parametrize("solver, guidance", [("midpoint", None), ("euler", 2.0), ("rk4", None)])
def test_fast_path_emits_the_same_tokens_as_the_plain_path(model, solver, guidance):
    """Conditioning looked up from per-time tables (the fast path) against computing it at every evaluation."""
    ids, mask = decode_prompts()
    options = dict(max_new_tokens=6, solver=solver, levels=4, temperature=1.0, guidance=guidance,
                   class_labels=torch.tensor([1, 2, 1]))
    fast = model.generate(ids, mask, generator=torch.Generator().manual_seed(11), **options)
    plain = model.generate(ids, mask, generator=torch.Generator().manual_seed(11), conditioning_tables=False,
                           **options)
    assert torch.equal(fast, plain)


@pytest.mark.parametrize("fast", [dict(static_cache=True), dict(compile="eager")])
@pytest.mark.parametrize("solver, guidance", [("midpoint", None), ("midpoint", 2.0), ("bosh3", None)])
def test_static_cache_and_compiled_evaluation_emit_the_plain_paths_tokens(model, fast, solver, guidance):
    """The preallocated cache (one mask for the whole decode) and the torch.compile-captured
    evaluation against the dynamic cache and eager evaluation, sampling on, fixed seed."""
    ids, mask = decode_prompts()
    options = dict(max_new_tokens=6, solver=solver, levels=4, temperature=1.0, guidance=guidance,
                   class_labels=torch.tensor([1, 2, 1]), return_stats=True)
    plain, plain_stats = model.generate(ids, mask, generator=torch.Generator().manual_seed(5), **options)
    torch._dynamo.reset()
    counters.clear()
    ours, stats = model.generate(ids, mask, generator=torch.Generator().manual_seed(5), **fast, **options)
    assert torch.equal(ours, plain)
    assert torch.equal(stats.nfe_per_token, plain_stats.nfe_per_token)
    # Fixed grids really run the captured graph; adaptive solvers stay eager (they sync every step).
    captured = counters["stats"]["unique_graphs"] > 0
    assert captured == ("compile" in fast and solver != "bosh3")


def test_static_cache_serves_the_plain_lm_and_token_search(model):
    ids, mask = decode_prompts()
    greedy = model.generate(ids, mask, max_new_tokens=5, levels=1, temperature=0.0)
    assert torch.equal(model.generate(ids, mask, max_new_tokens=5, levels=1, temperature=0.0, static_cache=True),
                       greedy)
    searched = token_search(model, ids, mask, hypotheses=3, max_new_tokens=4, levels=2,
                            generator=torch.Generator().manual_seed(1))
    for _ in range(2):  # the second search runs in the caches the first one left for reuse (3 rows, then 9)
        assert torch.equal(token_search(model, ids, mask, hypotheses=3, max_new_tokens=4, levels=2, static_cache=True,
                                        generator=torch.Generator().manual_seed(1)), searched)


def test_prompts_of_any_length_decode_through_one_compiled_graph(model):
    """One graph per (batch, guidance, cache bucket): prompts of 16, 40 and 100 tokens share the 128-position
    bucket, and the first token (right after the prefill) runs the graph of the tokens after it."""
    torch._dynamo.reset()
    counters.clear()
    options = dict(max_new_tokens=4, solver="midpoint", levels=2, temperature=1.0, guidance=2.0,
                   class_labels=torch.tensor([1, 2]))
    for length in (16, 40, 100):
        ids = torch.randint(0, 256, (2, length), generator=torch.Generator().manual_seed(length))
        plain = model.generate(ids, generator=torch.Generator().manual_seed(3), **options)
        ours = model.generate(ids, generator=torch.Generator().manual_seed(3), compile="eager", **options)
        assert torch.equal(ours, plain)
    assert counters["stats"]["unique_graphs"] == 1


def test_repeated_calls_reuse_one_static_cache_per_shape(model):
    """The keys every evaluation reads live at one address from one generate() call to the next (CUDA graphs
    record once); another batch size gets a cache of its own, and a decoder still running keeps its cache."""
    read = []
    hook = model.diffusion.register_forward_pre_hook(lambda module, args: read.append(args[3].keys[0].data_ptr()))
    try:
        calls = []
        for rows, length in ((2, 7), (2, 30), (3, 7)):
            read.clear()
            ids = torch.randint(0, 256, (rows, length), generator=torch.Generator().manual_seed(length))
            model.generate(ids, max_new_tokens=3, levels=2, static_cache=True)
            calls.append(set(read))
    finally:
        hook.remove()
    assert len(calls[0]) == 1 and calls[1] == calls[0] and calls[2] != calls[0]
    ids, mask = decode_prompts()
    running = Decoder(model, DecodeOptions(levels=1, static_cache=True), None, None)
    running.start(ids, mask, 3)
    meanwhile = Decoder(model, DecodeOptions(levels=1, static_cache=True), None, None)
    meanwhile.start(ids, mask, 3)
    assert meanwhile.cache is not running.cache
    freed = meanwhile.cache
    del meanwhile
    after = Decoder(model, DecodeOptions(levels=1, static_cache=True), None, None)
    after.start(ids, mask, 3)
    assert after.cache is freed


def test_unknown_compile_mode_names_the_choices(model):
    ids, mask = decode_prompts()
    with pytest.raises(ValueError, match="compile must be null or one of .*reduce-overhead"):
        model.generate(ids, mask, max_new_tokens=2, compile="fastest")


def test_merged_lora_equals_the_unmerged_path_and_follows_training(model):
    """Each block's LoRA factors merged into copies of its projections: the same tokens, the same evaluation within
    float rounding, the LM's own weights untouched, and the copies made again once a weight they came from changes."""
    ids, mask = decode_prompts()
    lm_weights = {name: p.clone() for name, p in model.base.named_parameters()}
    options = dict(max_new_tokens=4, levels=4, temperature=1.0)
    seeded = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    merged_during = []
    watch = lambda t, logits: merged_during.append(model.diffusion.blocks[0].merged is not None)  # noqa: E731
    assert torch.equal(model.generate(ids, mask, merge_lora=True, generator=seeded(), **options),
                       model.generate(ids, mask, merge_lora=False, generator=seeded(), **options))
    model.generate(ids, mask, generator=seeded(), observe=watch, **options)
    assert merged_during and all(merged_during)  # by default on CPU, where it measured faster
    assert all(torch.equal(p, lm_weights[name]) for name, p in model.base.named_parameters())
    assert all(block.merged is None for block in model.diffusion.blocks)  # merged within a decode only

    decoder = Decoder(model, DecodeOptions(levels=1), None, None)
    decoder.start(ids, mask, 1)
    slot = lambda v: v.unsqueeze(1)  # noqa: E731
    context = model.context(decoder.cache, len(model.diffusion.blocks), slot(decoder.h_last), slot(decoder.token),
                            slot(decoder.index), slot(decoder.position), decoder.attention_mask)
    x, t = torch.randn(3, 1, 16, generator=torch.Generator().manual_seed(0)), torch.full((3, 1), 0.5)
    classes = torch.tensor([[1], [2], [1]])

    def evaluation(merged: bool):
        with model.diffusion.merged_lora(merged):
            return model.diffusion_logits(x, t, classes, context)

    before = evaluation(False)
    torch.testing.assert_close(evaluation(True), before, rtol=1e-5, atol=1e-5)
    lora_b = model.diffusion.blocks[0].projections["q_proj"].lora_B["default"].weight
    with torch.no_grad():
        lora_b.add_(0.05)  # as an optimizer step would
    try:
        after = evaluation(False)
        assert not torch.allclose(after, before)
        torch.testing.assert_close(evaluation(True), after, rtol=1e-5, atol=1e-5)
    finally:
        with torch.no_grad():
            lora_b.sub_(0.05)
