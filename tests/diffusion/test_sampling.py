"""Token sampling (exact distribution, greedy at 0) and the x̂ estimates."""

import torch

from l2d.diffusion.sampling import annealed_temperature, estimate_x1, sample_tokens


def test_samples_follow_softmax_and_zero_temperature_is_argmax():
    logits = torch.log(torch.tensor([0.1, 0.2, 0.7])).expand(60_000, 3)
    tokens = sample_tokens(logits, 1.0, generator=torch.Generator().manual_seed(0))
    frequencies = torch.bincount(tokens, minlength=3).float() / 60_000
    torch.testing.assert_close(frequencies, torch.tensor([0.1, 0.2, 0.7]), atol=0.01, rtol=0)
    assert (sample_tokens(logits, 0.0) == 2).all()
    sharp = sample_tokens(logits, 0.05, generator=torch.Generator().manual_seed(0))
    assert (sharp == 2).float().mean() > 0.99


def test_per_row_temperature():
    logits = torch.tensor([[0.0, 0.1], [0.0, 0.1]]).repeat(500, 1)
    temperature = torch.tensor([0.0, 5.0]).repeat(500).unsqueeze(-1)
    tokens = sample_tokens(logits, temperature, generator=torch.Generator().manual_seed(0))
    assert (tokens[0::2] == 1).all()
    assert 0.3 < (tokens[1::2] == 1).float().mean() < 0.7


def test_expectation_and_sample_estimates():
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    logits = torch.log(torch.tensor([[0.5, 0.5, 1e-9]]))
    torch.testing.assert_close(estimate_x1(logits, table, "expectation", 1.0), torch.tensor([[0.5, 0.5]]))
    sampled = estimate_x1(logits.expand(100, 3), table, "sample", 1.0, generator=torch.Generator().manual_seed(0))
    assert {tuple(row.tolist()) for row in sampled} == {(1.0, 0.0), (0.0, 1.0)}
    greedy = estimate_x1(torch.tensor([[0.0, 2.0, 1.0]]), table, "expectation", 0.0)
    assert torch.equal(greedy, torch.tensor([[0.0, 1.0]]))


def test_temperature_anneals_linearly_to_zero():
    assert annealed_temperature(1.0, 0.25, anneal=True) == 0.75
    assert annealed_temperature(1.0, 0.25, anneal=False) == 1.0
    torch.testing.assert_close(annealed_temperature(2.0, torch.tensor([0.0, 1.0]), anneal=True),
                               torch.tensor([[2.0], [0.0]]))
