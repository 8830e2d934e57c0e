"""Rollouts for RL through the denoising chain: the project's own decoder, every action recorded.

For L2D each generated token is a chain of evaluations on a fixed grid (DDPO's Markov decision process,
Black et al. 2023): at evaluation e the path sees the state x_e at time t_e and samples x̂'s token a_e from
softmax(logits / τ_e) — the action; the next state follows from it deterministically through the solver
step. The final evaluation's action is the emitted token itself, sampled at the emitted temperature. A
plain LM (a LoRA model) has one action per token: the token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from l2d.diffusion.sampling import annealed_temperature, sample_tokens
from l2d.diffusion.solver import ADAPTIVE, fixed_nfe
from l2d.model.generate import DecodeOptions, Decoder


@dataclass
class Rollout:
    """A batch of completions and the actions that made them.

    prompt_ids, prompt_mask: (B, P) left-padded prompts. tokens: (B, N) generated tokens, `pad` after the
    stop token; lengths: (B,) tokens generated, the stop token included. actions, log_probs: (B, N, E) each
    token's E actions and their log-probabilities when sampled (the policy that rolled out); the last of a
    token's actions is the token. temperatures, times: (E,) each action's sampling temperature and its
    evaluation's t (a plain LM: [temperature], [0]). states: (B, N, E, d̄) the diffusion token each
    evaluation saw (None for a plain LM). levels: the grid's levels (1: a plain LM)."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    tokens: torch.Tensor
    lengths: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    temperatures: list[float]
    times: list[float]
    states: torch.Tensor | None
    levels: int
    seconds: float

    @property
    def valid(self) -> torch.Tensor:
        """(B, N) the generated tokens, up to and including each row's stop token."""
        return torch.arange(self.tokens.shape[1], device=self.tokens.device) < self.lengths.unsqueeze(1)

    @property
    def nfe(self) -> int:
        """Model evaluations per generated token."""
        return len(self.times)


def action_log_prob(logits: torch.Tensor, tokens: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logits / temperature)[tokens]; 0 where the temperature is 0 (a deterministic choice)."""
    if temperature == 0:
        return torch.zeros(tokens.shape, device=logits.device)
    return torch.log_softmax(logits.float() / temperature, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def rollout(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, options: DecodeOptions,
            temperature: float, max_new_tokens: int, stop_ids: list[int], pad_id: int,
            generator: torch.Generator | None = None) -> Rollout:
    """Decode `input_ids` (B, P) as `generate` does (the same decoder, grid and random streams; finished
    rows leave the batch) and record every action. L2D: fixed-grid solvers, x̂ sampled (`sample`), no
    guidance; `levels=1` (and any plain LM) decodes the LM's own logits, one action per token."""
    diffusion = hasattr(model, "diffusion") and options.levels > 1
    if diffusion and (options.solver in ADAPTIVE or options.x1_estimate != "sample" or options.guidance):
        raise ValueError(f"RL rollouts need a fixed-grid solver with x̂ sampled and no guidance; got "
                         f"solver={options.solver}, x1_estimate={options.x1_estimate}, guidance={options.guidance}")
    started = time.perf_counter()
    batch, device = input_ids.shape[0], input_ids.device
    actions_per_token = fixed_nfe(options.solver, options.levels) + 1 if diffusion else 1
    shape = (batch, max_new_tokens, actions_per_token)
    actions = torch.zeros(shape, dtype=torch.long, device=device)
    log_probs = torch.zeros(shape, device=device)
    states = torch.zeros((*shape, model.config.dim), device=device) if diffusion else None
    times: list[float] = [] if diffusion else [0.0]
    temperatures: list[float] = [] if diffusion else [temperature]
    where = {"rows": torch.arange(batch, device=device), "step": 0, "action": 0}

    def record(t: float, x: torch.Tensor, logits: torch.Tensor, tokens: torch.Tensor | None) -> None:
        rows, step, action = where["rows"], where["step"], where["action"]
        chosen = temperature if tokens is None else annealed_temperature(options.x1_temperature, t,
                                                                          options.anneal_x1_temperature)
        if step == 0 and len(times) < actions_per_token:
            times.append(t)
            temperatures.append(float(chosen))
        states[rows, step, action] = x.float()
        if tokens is not None:
            actions[rows, step, action] = tokens
            log_probs[rows, step, action] = action_log_prob(logits, tokens, float(chosen))
        where["action"] = action + 1

    decoder = Decoder(model, options, None, generator)
    if diffusion:
        decoder.diffusion.record = record
    logits, _ = decoder.start(input_ids, attention_mask, max_new_tokens)
    tokens = torch.full((batch, max_new_tokens), pad_id, dtype=torch.long, device=device)
    lengths = torch.full((batch,), max_new_tokens, dtype=torch.long, device=device)
    stops = torch.tensor(stop_ids, device=device)
    rows = where["rows"]
    for step in range(max_new_tokens):
        emitted = sample_tokens(logits.float(), temperature, generator)
        tokens[rows, step] = emitted
        actions[rows, step, -1] = emitted
        log_probs[rows, step, -1] = action_log_prob(logits, emitted, temperature)
        stopped = torch.isin(emitted, stops)
        lengths[rows[stopped]] = step + 1
        if step == max_new_tokens - 1 or bool(stopped.all()):
            break
        if bool(stopped.any()):
            keep = (~stopped).nonzero().squeeze(1)
            decoder.retire(keep)
            rows, emitted = rows[keep], emitted[keep]
        where.update(rows=rows, step=step + 1, action=0)
        logits, _ = decoder.advance(emitted)
    return Rollout(prompt_ids=input_ids, prompt_mask=attention_mask, tokens=tokens, lengths=lengths, actions=actions,
                   log_probs=log_probs, temperatures=temperatures, times=times, states=states, levels=options.levels
                   if diffusion else 1, seconds=time.perf_counter() - started)
