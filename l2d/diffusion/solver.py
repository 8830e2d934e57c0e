"""ODE integration of the diffusion token from t=0 to t_final.

Fixed-step solvers (euler, midpoint, rk4) walk a grid of `levels` points. They are written out
here rather than called through `torchdiffeq.odeint`, whose fixed-grid loop compares device
tensors on the host at every step: our loop uses host floats for time, so it never synchronises
and a whole token's integration can be captured in one CUDA graph. Tests check that both agree.

Adaptive solvers use torchdiffeq's Butcher tableaus and its step-size controller, applied per
row: each sequence of the batch gets its own step size, accepts or rejects its own steps, and
reports its own number of evaluations (torchdiffeq shares one step size across the batch).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch
from torchdiffeq._impl.odeint import SOLVERS as TORCHDIFFEQ_SOLVERS

# velocity(t, x): t a float, x (B, D): fixed grids.
Velocity = Callable[[float | torch.Tensor, torch.Tensor], torch.Tensor]
# velocity(t, x, rows): t (n,), x (n, D) for the batch rows `rows` (n,): adaptive solvers.
RowVelocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

FIXED_STAGES = {"euler": 1, "midpoint": 2, "rk4": 4}
ADAPTIVE = ("adaptive_heun", "bosh3", "fehlberg2", "dopri5")
SOLVERS = tuple(FIXED_STAGES) + ADAPTIVE


def check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")


def time_grid(levels: int, t_final: float, t_start: float = 0.0) -> list[float]:
    """`levels` evenly spaced points from t_start to t_final (host floats: no device sync when read)."""
    if levels == 1:
        return [t_start]
    return [t_start + (t_final - t_start) * i / (levels - 1) for i in range(levels)]


def fixed_step(velocity: Velocity, solver: str, t0: float, t1: float, x: torch.Tensor) -> torch.Tensor:
    """One step of a fixed-step Runge-Kutta method (same formulas as torchdiffeq's)."""
    h = t1 - t0
    if solver == "euler":
        return x + h * velocity(t0, x)
    if solver == "midpoint":
        k1 = velocity(t0, x)
        return x + h * velocity(t0 + h / 2, x + (h / 2) * k1)
    # rk4: torchdiffeq's "3/8 rule" variant (rk4_alt_step_func), its default for method="rk4"
    k1 = velocity(t0, x)
    k2 = velocity(t0 + h / 3, x + h * k1 / 3)
    k3 = velocity(t0 + 2 * h / 3, x + h * (k2 - k1 / 3))
    k4 = velocity(t1, x + h * (k1 - k2 + k3))
    return x + h * (k1 + 3 * (k2 + k3) + k4) / 8


def integrate_fixed(velocity: Velocity, x: torch.Tensor, solver: str, grid: list[float]) -> torch.Tensor:
    for t0, t1 in pairwise(grid):
        x = fixed_step(velocity, solver, t0, t1, x)
    return x


def fixed_nfe(solver: str, levels: int) -> int:
    """Evaluations to integrate a `levels` grid, not counting the final evaluation."""
    return FIXED_STAGES[solver] * (levels - 1)


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(dim=-1).sqrt()


def integrate_adaptive(velocity: RowVelocity, x: torch.Tensor, solver: str, t_end: float,
                       atol: float, rtol: float, max_steps: int = 10_000,
                       t_start: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate rows of x (B, D) from t_start to t_end, each row with its own step size.

    Returns (x at t_end, evaluations per row). `velocity(t, x, rows)` is asked only for the rows still
    integrating (`rows` their indices in the batch): a row that has arrived costs nothing more while a
    stiffer one takes its small steps.
    """
    spec = TORCHDIFFEQ_SOLVERS[solver]
    tableau, order = spec.tableau, spec.order
    batch, device = x.shape[0], x.device
    alpha = tableau.alpha.tolist()
    beta = [b.to(device=device, dtype=x.dtype) for b in tableau.beta]
    c_sol = tableau.c_sol.to(device=device, dtype=x.dtype)
    c_error = tableau.c_error.to(device=device, dtype=x.dtype)

    x, every_row = x.clone(), torch.arange(batch, device=device)
    t = torch.full((batch,), t_start, dtype=torch.float64, device=device)
    f = velocity(t, x, every_row)
    nfe = torch.ones(batch, dtype=torch.long, device=device)
    dt = _initial_step(lambda t_, x_: velocity(t_, x_, every_row), t, x, f, order - 1, atol, rtol)
    nfe += 1
    rows = every_row  # those still integrating

    for _ in range(max_steps):
        if rows.numel() == 0:
            return x, nfe
        x_rows, t_rows = x[rows], t[rows]
        dt_rows = torch.minimum(dt[rows], t_end - t_rows)  # land exactly on t_end (torchdiffeq's step_t)
        step = dt_rows.to(x.dtype).unsqueeze(-1)
        k = [f[rows]]
        for alpha_i, beta_i in zip(alpha, beta, strict=True):
            t_i = t_rows + dt_rows if alpha_i == 1.0 else t_rows + alpha_i * dt_rows
            x_i = x_rows + step * sum(b * k_j for b, k_j in zip(beta_i, k, strict=True))
            k.append(velocity(t_i, x_i, rows))
        nfe[rows] += len(alpha)
        x_next = x_rows + step * sum(c * k_j for c, k_j in zip(c_sol, k, strict=True))
        error = step * sum(c * k_j for c, k_j in zip(c_error, k, strict=True))
        ratio = _rms(error / (atol + rtol * torch.maximum(x_rows.abs(), x_next.abs()))).to(torch.float64)

        accept = ratio <= 1
        x[rows] = torch.where(accept.unsqueeze(-1), x_next, x_rows)
        f[rows] = torch.where(accept.unsqueeze(-1), k[-1], k[0])
        t[rows] = torch.where(accept, t_rows + dt_rows, t_rows)
        dt[rows] = _next_step(dt_rows, ratio, order)
        rows = rows[~(accept & (t[rows] >= t_end))]
    raise RuntimeError(f"adaptive solver {solver} did not reach t={t_end} in {max_steps} steps "
                       f"(atol={atol}, rtol={rtol}); loosen the tolerances, or end before the stiff end of the "
                       "flow with t_final < 1 (the adaptive solver configs use 0.99)")


def _initial_step(velocity: Velocity, t0: torch.Tensor, x0: torch.Tensor, f0: torch.Tensor,
                  order: int, atol: float, rtol: float) -> torch.Tensor:
    """Hairer's initial step (torchdiffeq's `_select_initial_step`), per row: one extra evaluation."""
    scale = atol + x0.abs() * rtol
    d0, d1 = _rms(x0 / scale).double(), _rms(f0 / scale).double()
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6), 0.01 * d0 / d1.clamp_min(1e-300))
    f1 = velocity(t0 + h0, x0 + h0.to(x0.dtype).unsqueeze(-1) * f0)
    d2 = (_rms((f1 - f0) / scale).double() / h0).abs()
    largest = torch.maximum(d1, d2)
    h1 = torch.where(largest <= 1e-15, torch.clamp(h0 * 1e-3, min=1e-6),
                     (0.01 / largest.clamp_min(1e-300)) ** (1.0 / (order + 1)))
    return torch.minimum(100 * h0, h1)


def _next_step(dt: torch.Tensor, ratio: torch.Tensor, order: int, safety: float = 0.9,
               ifactor: float = 10.0, dfactor: float = 0.2) -> torch.Tensor:
    """torchdiffeq's `_optimal_step_size`, per row: shrink at most 5x on rejection, grow at most 10x."""
    floor = torch.where(ratio < 1, torch.ones_like(ratio), torch.full_like(ratio, dfactor))
    factor = torch.clamp(torch.maximum(safety / ratio.clamp_min(1e-300) ** (1.0 / order), floor), max=ifactor)
    return dt * torch.where(ratio == 0, torch.full_like(ratio, ifactor), factor)
