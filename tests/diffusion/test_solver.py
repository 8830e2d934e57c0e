"""Solvers against ODEs with known solutions and against torchdiffeq itself."""

import math

import pytest
import torch
from torchdiffeq import odeint

from l2d.diffusion.solver import fixed_nfe, integrate_adaptive, integrate_fixed, time_grid


def decay(rates):
    """dy/dt = -k y per row: y(t) = y0 exp(-k t). Adaptive solvers pass the rows y holds."""
    def velocity(t, y, rows=None):
        return -(rates if rows is None else rates[rows]).unsqueeze(-1) * y
    return velocity


@pytest.mark.parametrize("solver", ["euler", "midpoint", "rk4"])
def test_fixed_step_matches_torchdiffeq(solver):
    y0 = torch.randn(3, 5, dtype=torch.float64)
    velocity = decay(torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64))
    grid = time_grid(9, 1.0)
    ours = integrate_fixed(velocity, y0, solver, grid)
    theirs = odeint(lambda t, y: velocity(t, y), y0, torch.tensor(grid, dtype=torch.float64), method=solver)[-1]
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver, order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_step_converges_at_its_order(solver, order):
    y0 = torch.ones(1, 1, dtype=torch.float64)
    velocity = decay(torch.tensor([1.0], dtype=torch.float64))
    errors = [abs(integrate_fixed(velocity, y0, solver, time_grid(n + 1, 1.0)).item() - math.exp(-1))
              for n in (8, 16)]
    assert errors[0] / errors[1] == pytest.approx(2**order, rel=0.15)


def test_grid_and_nfe():
    assert time_grid(1, 1.0) == [0.0]
    assert time_grid(5, 0.8) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert fixed_nfe("midpoint", 8) == 14 and fixed_nfe("euler", 15) == 14 and fixed_nfe("rk4", 3) == 8


@pytest.mark.parametrize("solver", ["adaptive_heun", "bosh3", "fehlberg2", "dopri5"])
def test_adaptive_single_row_matches_torchdiffeq_steps_and_solution(solver):
    """One row: the same steps as torchdiffeq landing on t_end (step_t), so the same NFE and result."""
    y0 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    velocity = decay(torch.tensor([3.0], dtype=torch.float64))
    calls = []

    def counted(t, y, rows=None):
        calls.append(1)
        return velocity(t, y, rows)

    theirs = odeint(counted, y0, torch.tensor([0.0, 1.0], dtype=torch.float64), method=solver,
                    rtol=1e-4, atol=1e-6, options={"step_t": torch.tensor([1.0], dtype=torch.float64)})[-1]
    ours, nfe = integrate_adaptive(velocity, y0, solver, 1.0, atol=1e-6, rtol=1e-4)
    assert nfe.item() == len(calls)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours, y0 * math.exp(-3.0), rtol=5e-2, atol=1e-5)  # local-error control only


def test_adaptive_rows_take_their_own_steps_independent_of_the_batch():
    rates = torch.tensor([0.5, 5.0, 50.0], dtype=torch.float64)
    y0 = torch.ones(3, 2, dtype=torch.float64)
    rows_evaluated = []

    def counted(t, y, rows):
        rows_evaluated.append(len(rows))
        return decay(rates)(t, y, rows)

    together, nfe = integrate_adaptive(counted, y0, "dopri5", 1.0, atol=1e-6, rtol=1e-3)
    assert sum(rows_evaluated) == nfe.sum()  # a row that has arrived is evaluated no more
    alone = [integrate_adaptive(decay(rates[i:i + 1]), y0[i:i + 1], "dopri5", 1.0, atol=1e-6, rtol=1e-3)
             for i in range(3)]
    assert nfe.tolist() == [n.item() for _, n in alone]
    assert nfe[0] < nfe[1] < nfe[2]  # the stiffer the row, the more evaluations it alone pays for
    for i, (row, _) in enumerate(alone):
        torch.testing.assert_close(together[i:i + 1], row)
    torch.testing.assert_close(together, y0 * torch.exp(-rates).unsqueeze(-1), rtol=1e-2, atol=1e-4)


def test_adaptive_stops_at_t_final_below_one():
    y0 = torch.ones(2, 1, dtype=torch.float64)
    result, _ = integrate_adaptive(decay(torch.tensor([1.0, 2.0], dtype=torch.float64)), y0, "bosh3", 0.5,
                                   atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(result.flatten(), torch.exp(-torch.tensor([0.5, 1.0], dtype=torch.float64)),
                               rtol=1e-5, atol=1e-7)


def test_a_grid_can_start_after_t_0():
    assert time_grid(4, 0.9, t_start=0.3) == pytest.approx([0.3, 0.5, 0.7, 0.9])
    assert time_grid(1, 1.0, t_start=0.2) == [0.2]


def test_adaptive_integration_starts_at_t_start():
    seen = []

    def velocity(t, x, rows):
        seen.append(float(t.min()))
        return -x

    x, _ = integrate_adaptive(velocity, torch.ones(2, 1), "bosh3", 1.0, atol=1e-6, rtol=1e-4, t_start=0.5)
    assert seen[0] == 0.5 and min(seen) == 0.5
    torch.testing.assert_close(x, torch.full((2, 1), math.exp(-0.5)), rtol=1e-3, atol=1e-4)
