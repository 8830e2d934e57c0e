"""python -m l2d.inspect: every solver evaluation of every token is recorded, and decoding is unchanged."""

import re

import pytest
import torch

from l2d import L2DModel
from l2d.diffusion.solver import fixed_nfe
from l2d.inspect import inspect, trace
from l2d.model.tiny import byte_tokenizer
from tests.compose import compose_config


@pytest.fixture(scope="module")
def model(export):
    return L2DModel.from_pretrained(export).eval()


def tokenizer():
    return byte_tokenizer()


def prompt_ids():
    return torch.randint(0, 200, (9,), generator=torch.Generator().manual_seed(1)).tolist()


@pytest.mark.parametrize("solver, levels", [("midpoint", 4), ("euler", 5), ("rk4", 3)])
def test_fixed_solvers_every_evaluation_on_the_grid(model, solver, levels):
    traces = trace(model, tokenizer(), prompt_ids(),
                   generator=torch.Generator().manual_seed(0), max_new_tokens=4, solver=solver, levels=levels,
                   temperature=0.0)
    assert len(traces) == 4
    for token_trace in traces:
        times = [e.t for e in token_trace.evaluations]
        assert len(times) == fixed_nfe(solver, levels) + 1  # the solver's NFE, then the final evaluation
        assert times[0] == 0.0 and times[-1] == 1.0 and times == sorted(times)
        # greedy: the emitted token is the last evaluation's most likely one
        assert token_trace.evaluations[-1].top[0][0] == token_trace.token
        assert token_trace.settled_at is not None
        assert all(0.0 <= e.p_emitted <= 1.0 and len(e.top) == 5 for e in token_trace.evaluations)


@pytest.mark.parametrize("options", [dict(solver="midpoint", levels=6, temperature=1.0, x1_temperature=1.0),
                                     dict(solver="bosh3", t_final=0.99, atol=1e-2, rtol=1e-2, temperature=1.0)])
def test_watching_does_not_change_the_tokens(model, options):
    ids = torch.tensor([prompt_ids()])
    plain, stats = model.generate(ids, max_new_tokens=6, generator=torch.Generator().manual_seed(5), return_stats=True,
                                  **options)
    traces = trace(model, tokenizer(), prompt_ids(), generator=torch.Generator().manual_seed(5),
                   max_new_tokens=6, **options)
    assert "".join(tr.token for tr in traces) == tokenizer().decode(plain[0, ids.shape[1]:].tolist())
    assert [len(tr.evaluations) for tr in traces] == stats.nfe_per_token[0].tolist()  # adaptive: its own counts


def test_entry_point_writes_table_picture_and_numbers(export, tmp_path):
    overrides = ["model=tiny", f"checkpoint={export}", "prompt='What is 2 + 2?'", "max_new_tokens=5",
                 "solver.levels=3"]
    traces = inspect(compose_config("inspect", overrides, tmp_path))
    table = (tmp_path / "trajectory.txt").read_text()
    assert len(re.findall(r"^token \d+ .*: 5 evaluations, ", table, flags=re.M)) == len(traces) == 5
    rows = re.findall(r"^ +(\d+) +([\d.]+) +[\d.]+  ['\"]", table, flags=re.M)
    assert [int(n) for n, _ in rows] == [1, 2, 3, 4, 5] * 5  # every evaluation of every token, in order
    assert [float(t) for _, t in rows[:5]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert (tmp_path / "trajectory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"settled_at"' in (tmp_path / "trajectory.json").read_text()


def test_without_checkpoint_the_base_gets_an_untrained_path(tmp_path):
    traces = inspect(compose_config("inspect", ["model=tiny", "prompt=hi", "max_new_tokens=2"], tmp_path))
    # untrained, either start gives the base LM's own distribution at every evaluation
    for token_trace in traces:
        assert len(token_trace.evaluations) == 15
        first = token_trace.evaluations[0].top
        for evaluation in token_trace.evaluations:
            assert [text for text, _ in evaluation.top] == [text for text, _ in first]
            assert [p for _, p in evaluation.top] == pytest.approx([p for _, p in first], abs=1e-4)


def test_each_token_names_its_nearest_rival_in_the_diffusion_vocabulary(model):
    """The rival is one of the tokens the path listed, at its distance in V from the emitted token, and x_t
    separates the two (means two noise stds apart) from readable_from on: t * |V - V'| = 2 (1 - t) sigma."""
    traces = trace(model, tokenizer(), prompt_ids(), generator=torch.Generator().manual_seed(0), max_new_tokens=3,
                   solver="midpoint", levels=3, temperature=0.0)
    table, sigma = model.diffusion_table(), model.config.sigma
    for token_trace in traces:
        rival = token_trace.rival
        assert rival.token_id != token_trace.token_id
        assert any(rival.token == text for e in token_trace.evaluations for text, _ in e.top)
        distance = float(torch.linalg.vector_norm(table[rival.token_id] - table[token_trace.token_id]))
        assert rival.distance == pytest.approx(distance, rel=1e-5)
        t = rival.readable_from
        assert 0 < t < 1 and t * rival.distance == pytest.approx(2 * (1 - t) * sigma, rel=1e-5)


def test_a_closer_rival_is_readable_only_later():
    from l2d.inspect import nearest_rival

    table = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 30.0]])
    close = nearest_rival(table, 0, [1, 2], sigma=8.0, tokenizer=tokenizer())
    far = nearest_rival(table, 0, [2], sigma=8.0, tokenizer=tokenizer())
    assert (close.token_id, close.distance, far.token_id, far.distance) == (1, 3.0, 2, 30.0)
    assert close.readable_from == pytest.approx(16 / 19) and far.readable_from == pytest.approx(16 / 46)
    assert nearest_rival(table, 0, [], sigma=8.0, tokenizer=tokenizer()) is None


@pytest.mark.parametrize("solver", ["midpoint", "bosh3"])
def test_t_start_skips_the_frozen_lm_evaluation(model, solver):
    """t_start > 0: the first evaluation is at t_start, none at t = 0 (where the fused model is the frozen LM), and
    a fixed grid spends the same evaluations on [t_start, t_final]."""
    options = dict(solver=solver, levels=3, t_final=0.9, t_start=0.2, atol=1e-2, rtol=1e-2, temperature=0.0)
    traces = trace(model, tokenizer(), prompt_ids(), generator=torch.Generator().manual_seed(0), max_new_tokens=2,
                   **options)
    for token_trace in traces:
        times = [e.t for e in token_trace.evaluations]
        assert times[0] == pytest.approx(0.2) and min(times) == pytest.approx(0.2) and times[-1] == pytest.approx(0.9)
        if solver == "midpoint":
            assert times == pytest.approx([0.2, 0.375, 0.55, 0.725, 0.9])
    with pytest.raises(ValueError, match=r"t_start must be in \[0, t_final=0.9\), got 0.9"):
        trace(model, tokenizer(), prompt_ids(), max_new_tokens=1, solver="midpoint", t_final=0.9, t_start=0.9)
