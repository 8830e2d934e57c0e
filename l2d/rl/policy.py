"""The policies RL trains, and the log-probabilities of recorded actions recomputed with gradient.

L2D: only the diffusion path trains; one main-path pass over prompt + completion gives every generated
token's context (the training forward's `Slots`), then the recorded states of the chosen evaluations go
through the diffusion path in one batched pass (the slots repeated once per chosen evaluation).
A plain LM (LoRA, in token space): one forward over prompt + completion, one action per token.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from l2d.data.chat import IGNORE_INDEX, next_token_labels
from l2d.model.family import get, positions_from_mask
from l2d.model.finetune import Finetune
from l2d.model.main_path import CausalLM
from l2d.rl.rollout import Rollout


class TokenPolicy(CausalLM):
    """A lora/full baseline as a policy over tokens: it decodes through the project's loop (one evaluation
    per token) with its adapter (or weights) trainable, and saves as the export it came from."""

    def __init__(self, finetune: Finetune):
        lm = finetune.model.get_base_model() if finetune.method == "lora" else finetune.model
        super().__init__(lm, freeze=False)
        self.finetune = finetune

    def trainable_named_parameters(self):
        return self.finetune.trainable_named_parameters()

    def num_trainable_parameters(self) -> int:
        return self.finetune.num_trainable_parameters()

    def save_pretrained(self, directory, training=None) -> None:
        self.finetune.save_pretrained(directory, training)


@dataclass
class Scored:
    """log_probs, entropies: (R, N, K) of the K chosen actions of each generated token (entropy: of the
    distribution the action was drawn from, in nats); zero where no action was chosen."""

    log_probs: torch.Tensor
    entropies: torch.Tensor


def completions(rollout: Rollout, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, labels) of prompt + completion for `rows`; the labels supervise exactly the
    generated tokens, so the training forward's slot j is the position that predicted generated token j."""
    valid = rollout.valid[rows]
    ids = torch.cat([rollout.prompt_ids[rows], rollout.tokens[rows]], dim=1)
    mask = torch.cat([rollout.prompt_mask[rows], valid.long()], dim=1)
    supervised = torch.cat([torch.zeros_like(rollout.prompt_mask[rows], dtype=torch.bool), valid], dim=1)
    return ids, mask, torch.where(supervised, ids, IGNORE_INDEX)


def scored(logits: torch.Tensor, actions: torch.Tensor, temperatures: torch.Tensor) -> Scored:
    """Log-probability of `actions` (...) under softmax(logits (..., V) / temperatures (...)), and the
    entropy of that distribution; a temperature of 0 (a deterministic choice) scores 0."""
    stochastic = temperatures > 0
    scaled = torch.log_softmax(logits.float() / temperatures.clamp_min(1e-6).unsqueeze(-1), dim=-1)
    log_probs = scaled.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    entropies = -(scaled.exp() * scaled).sum(-1)
    return Scored(torch.where(stochastic, log_probs, 0.0), torch.where(stochastic, entropies, 0.0))


def chain_log_probs(model, rollout: Rollout, rows: torch.Tensor, chosen: torch.Tensor) -> Scored:
    """L2D: the log-probabilities of the actions `chosen` (R, S, K: indices into each token's chain) of
    completions `rows`, S the longest of them, with gradient through the diffusion path."""
    ids, mask, labels = completions(rollout, rows)
    length = int(rollout.lengths[rows].max())
    slots = model.supervised_slots(ids, mask, labels, None)  # (R, S) slots, slot j -> generated token j
    count = chosen.shape[-1]
    states = rollout.states[rows, :length]  # (R, S, E, d̄)
    x = states.gather(2, chosen.unsqueeze(-1).expand(-1, -1, -1, states.shape[-1]))  # (R, S, K, d̄)
    times = torch.tensor(rollout.times, device=ids.device)[chosen]  # (R, S, K)
    # Slots repeated K times (block k holds every row once): one diffusion pass for every chosen evaluation.
    logits = model.diffusion_logits(x.permute(2, 0, 1, 3).flatten(0, 1),
                                    times.permute(2, 0, 1).flatten(0, 1), None, slots.repeat(count).context)
    logits = logits.unflatten(0, (count, len(rows))).permute(1, 2, 0, 3)  # (R, S, K, V)
    actions = rollout.actions[rows, :length].gather(2, chosen)
    temperatures = torch.tensor(rollout.temperatures, device=ids.device)[chosen]
    return scored(logits, actions, temperatures)


def token_log_probs(policy: TokenPolicy, rollout: Rollout, rows: torch.Tensor) -> Scored:
    """A plain LM: the log-probability of each generated token of completions `rows` (R, S, 1; S the longest of
    them), with gradient
    through the trainable adapter (or weights)."""
    ids, mask, labels = completions(rollout, rows)
    # Positions from the mask, as decoding counts them (left padding), so these are the rollout's logits.
    hidden = get(policy.base, policy.family.decoder)(input_ids=ids, attention_mask=mask,
                                                     position_ids=positions_from_mask(mask)).last_hidden_state
    logits = get(policy.base, policy.family.lm_head)(hidden[next_token_labels(labels) != IGNORE_INDEX])
    valid = rollout.valid[rows, :int(rollout.lengths[rows].max())]  # (R, S), as the chains' slots
    placed = logits.new_zeros((*valid.shape, logits.shape[-1]))
    placed[valid] = logits
    temperature = torch.full(valid.shape, rollout.temperatures[0], device=ids.device)
    out = scored(placed, rollout.tokens[rows, :valid.shape[1]], temperature)
    return Scored(torch.where(valid, out.log_probs, 0.0).unsqueeze(-1), torch.where(valid, out.entropies, 0.0)
                  .unsqueeze(-1))


@contextmanager
def swapped(parameters: list[nn.Parameter], values: list[torch.Tensor]):
    """Run with `parameters` holding `values` (e.g. the starting policy, for the KL to it), then restore them."""
    kept = [p.detach().clone() for p in parameters]
    with torch.no_grad():
        for parameter, value in zip(parameters, values, strict=True):
            parameter.copy_(value)
    try:
        yield
    finally:
        with torch.no_grad():
            for parameter, value in zip(parameters, kept, strict=True):
                parameter.copy_(value)
