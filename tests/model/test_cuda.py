"""The fast decoding path on a CUDA device: the static cache and the inductor-compiled evaluation (CUDA graphs
with "reduce-overhead") emit the tokens of the plain path, sampling on, from the same CUDA random stream.
float32 with TF32 off, so the compiled kernels and eager ones agree to rounding."""

import pytest
import torch

from tests.tiny import decode_prompts, tiny_l2d_far_from_lm

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def model():
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield tiny_l2d_far_from_lm(num_classes=2).cuda()
    torch.backends.cuda.matmul.allow_tf32 = tf32


@pytest.mark.parametrize("fast", [dict(static_cache=True), dict(compile="default"),
                                  dict(compile="reduce-overhead")])
@pytest.mark.parametrize("guidance", [None, 2.0])
def test_fast_path_on_cuda_emits_the_plain_paths_tokens(model, fast, guidance):
    ids, mask = decode_prompts("cuda")
    options = dict(max_new_tokens=6, solver="midpoint", levels=4, temperature=1.0, guidance=guidance,
                   class_labels=torch.tensor([1, 2, 1]).cuda(), return_stats=True)
    seeded = lambda: torch.Generator(device="cuda").manual_seed(5)  # noqa: E731
    plain, plain_stats = model.generate(ids, mask, generator=seeded(), **options)
    torch._dynamo.reset()
    ours, stats = model.generate(ids, mask, generator=seeded(), **fast, **options)
    assert ours.device.type == "cuda"
    assert torch.equal(ours, plain)
    assert torch.equal(stats.nfe_per_token, plain_stats.nfe_per_token)


def test_cuda_graphs_record_once_across_calls_and_prompt_lengths(model, monkeypatch):
    """One compiled graph per (batch, guidance, cache bucket) and one static cache per shape, reset in place: after
    the first generate(), prompts of other lengths in the same 128-position bucket record no CUDA graph again."""
    from torch._dynamo.utils import counters
    from torch._inductor import cudagraph_trees

    recorded = []
    record = cudagraph_trees.CUDAGraphTreeManager.record_function
    monkeypatch.setattr(cudagraph_trees.CUDAGraphTreeManager, "record_function",
                        lambda self, *args, **kwargs: recorded.append(1) or record(self, *args, **kwargs))
    torch._dynamo.reset()
    counters.clear()
    after_first = None
    for length in (16, 40, 100, 16):
        ids = torch.randint(0, 256, (2, length), generator=torch.Generator().manual_seed(length)).cuda()
        model.generate(ids, max_new_tokens=4, levels=2, temperature=0.0, compile="reduce-overhead")
        after_first = len(recorded) if after_first is None else after_first
    assert after_first >= 1 and len(recorded) == after_first
    assert counters["stats"]["unique_graphs"] == 1
