"""Token sampling and the clean-token estimate x̂ that drives the velocity."""

from __future__ import annotations

import torch

X1_ESTIMATES = ("sample", "expectation")


def sample_tokens(logits: torch.Tensor, temperature: float | torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample from softmax(logits / temperature) over the last dim; temperature 0 is argmax.

    Uses the exponential race argmax(p / E), E ~ Exp(1), which draws exactly from p without
    torch.multinomial's host synchronisation. `temperature` may be a tensor broadcastable to
    logits[..., :1] (one temperature per row); rows at 0 take the argmax.
    """
    greedy = logits.argmax(dim=-1)
    if isinstance(temperature, (int, float)) and temperature == 0:
        return greedy
    temperature = torch.as_tensor(temperature, device=logits.device, dtype=torch.float32)
    uniform = torch.rand(logits.shape, device=logits.device, generator=generator).clamp_min(1e-20)
    race = logits.float() / temperature.clamp_min(1e-6) - torch.log(-torch.log(uniform))
    sampled = race.argmax(dim=-1)
    return torch.where((temperature > 0).squeeze(-1), sampled, greedy)


def estimate_x1(logits: torch.Tensor, table: torch.Tensor, mode: str, temperature: float | torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """x̂ from diffusion logits (..., V): V_ŷ with ŷ sampled (`sample`) or sum_y p_y V_y (`expectation`).

    table: the diffusion vocabulary V (V, dim) in float32. Temperature 0 takes the most likely token.
    """
    if mode == "sample":
        return table[sample_tokens(logits, temperature, generator)]
    if mode == "expectation":
        if isinstance(temperature, (int, float)) and temperature == 0:
            return table[logits.argmax(dim=-1)]
        temperature = torch.as_tensor(temperature, device=logits.device, dtype=torch.float32)
        probs = torch.softmax(logits.float() / temperature.clamp_min(1e-6), dim=-1)
        expectation = probs @ table
        return torch.where(temperature > 0, expectation, table[logits.argmax(dim=-1)])
    raise ValueError(f"x1_estimate must be one of {list(X1_ESTIMATES)}, got {mode!r}")


def annealed_temperature(x1_temperature: float, t: float | torch.Tensor, anneal: bool):
    """The paper anneals x̂'s sampling temperature linearly to 0 as t goes to 1."""
    if not anneal or (isinstance(x1_temperature, (int, float)) and x1_temperature == 0):
        return x1_temperature
    if isinstance(t, torch.Tensor):
        return (x1_temperature * (1.0 - t)).clamp_min(0.0).float().unsqueeze(-1)
    return max(0.0, x1_temperature * (1.0 - t))
