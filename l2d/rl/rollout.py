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

from l2d.diffusion.sampling import annealed_temperature
from l2d.diffusion.solver import ADAPTIVE, fixed_nfe
from l2d.export import is_l2d
from l2d.model.generate import DecodeOptions, Decoder, Sampling, token_loop


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
    diffusion = is_l2d(model) and options.levels > 1
    if diffusion and (options.solver in ADAPTIVE or options.x1_estimate != "sample" or options.guidance):
        raise ValueError(f"RL rollouts need a fixed-grid solver with x̂ sampled and no guidance; got "
                         f"solver={options.solver}, x1_estimate={options.x1_estimate}, guidance={options.guidance}")
    started = time.perf_counter()
    decoder = Decoder(model, options, None, generator)
    recording = Recording(decoder, input_ids, options, temperature, max_new_tokens, stop_ids, pad_id, generator,
                          diffusion)
    token_loop(decoder, input_ids, attention_mask, max_new_tokens, recording)
    tokens = torch.full((input_ids.shape[0], max_new_tokens), pad_id, dtype=torch.long, device=input_ids.device)
    tokens[:, :len(recording.tokens)] = torch.stack(recording.tokens, dim=1)
    return Rollout(prompt_ids=input_ids, prompt_mask=attention_mask, tokens=tokens, lengths=recording.lengths,
                   actions=recording.actions, log_probs=recording.log_probs, temperatures=recording.temperatures,
                   times=recording.times, states=recording.states, levels=options.levels if diffusion else 1,
                   seconds=time.perf_counter() - started)


class Recording(Sampling):
    """generate's choice of tokens (l2d.model.generate.Sampling), every action recorded: each evaluation's state and
    sampled x̂ token (the decoder's `record`), and each emitted token with its log-probability."""

    def __init__(self, decoder: Decoder, input_ids: torch.Tensor, options: DecodeOptions, temperature: float,
                 max_new_tokens: int, stop_ids: list[int], pad_id: int, generator: torch.Generator | None,
                 diffusion: bool):
        device = input_ids.device
        super().__init__(decoder, input_ids, temperature, torch.tensor(stop_ids, device=device), pad_id, generator)
        self.options = options
        self.actions_per_token = fixed_nfe(options.solver, options.levels) + 1 if diffusion else 1
        shape = (input_ids.shape[0], max_new_tokens, self.actions_per_token)
        self.actions = torch.zeros(shape, dtype=torch.long, device=device)
        self.log_probs = torch.zeros(shape, device=device)
        self.states = torch.zeros((*shape, decoder.model.config.dim), device=device) if diffusion else None
        self.lengths = torch.full((input_ids.shape[0],), max_new_tokens, dtype=torch.long, device=device)
        self.times: list[float] = [] if diffusion else [0.0]
        self.temperatures: list[float] = [] if diffusion else [temperature]
        self.step, self.action = 0, 0  # where the next evaluation's action goes
        if diffusion:
            decoder.diffusion.record = self.record

    def record(self, t: float, x: torch.Tensor, logits: torch.Tensor, tokens: torch.Tensor | None) -> None:
        """One evaluation of the chain (TokenDiffusion.record): its state, and its x̂ token (None: the final one)."""
        options, rows, step, action = self.options, self.rows, self.step, self.action
        chosen = self.temperature if tokens is None else annealed_temperature(options.x1_temperature, t,
                                                                               options.anneal_x1_temperature)
        if step == 0 and len(self.times) < self.actions_per_token:
            self.times.append(t)
            self.temperatures.append(float(chosen))
        self.states[rows, step, action] = x.float()
        if tokens is not None:
            self.actions[rows, step, action] = tokens
            self.log_probs[rows, step, action] = action_log_prob(logits, tokens, float(chosen))
        self.action = action + 1

    def emit(self, step: int, logits: torch.Tensor, nfe: torch.Tensor) -> bool:
        going_on = super().emit(step, logits, nfe)
        rows = self.rows
        emitted = self.tokens[-1][rows]
        self.actions[rows, step, -1] = emitted
        self.log_probs[rows, step, -1] = action_log_prob(logits, emitted, self.temperature)
        self.lengths[rows[torch.isin(emitted, self.eos)]] = step + 1
        return going_on

    def feed(self) -> torch.Tensor:
        fed = super().feed()
        self.step, self.action = self.step + 1, 0
        return fed
