"""Group-relative policy gradient (GRPO, Shao et al. 2024) over the actions of a rollout.

Advantages: each prompt's G completions are compared with one another, A_i = (r_i − mean) / (std + eps);
a group whose completions all scored alike teaches nothing and is left out of the gradient pass.
Surrogate: PPO's clipped ratio per action, ratio = π(a) / π_rollout(a). With one update per rollout batch
(the default) the policy that rolled out is the one being updated, the ratio is 1 and the clip never binds;
it matters when a batch is reused (`updates` > 1). KL to the starting path: the k3 estimator on the
sampled actions, exp(q − p) − (q − p) − 1 with p, q their log-probabilities now and at the start.
A token's chain holds E actions (NFE evaluations and the emitted token); the gradient pass scores K of
them drawn uniformly (all when E ≤ K) and averages, an unbiased estimate of the chain's mean that costs
the same at every level count, so no budget of steps outweighs another in the update.
"""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """rewards (P, G) -> advantages (P, G), normalised within each prompt's group; 0 for a uniform group."""
    mean, std = rewards.mean(dim=1, keepdim=True), rewards.std(dim=1, keepdim=True, unbiased=False)
    return torch.where(std > eps, (rewards - mean) / (std + eps), torch.zeros_like(rewards))


def choose_actions(lengths: torch.Tensor, actions_per_token: int, count: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """(R, S, K) indices of the K actions scored for each generated token, drawn without replacement
    (all of them, K = E, when E <= count); S is the longest completion."""
    rows, length = lengths.shape[0], int(lengths.max())
    if actions_per_token <= count:
        return torch.arange(actions_per_token, device=lengths.device).expand(rows, length, actions_per_token)
    keys = torch.rand((rows, length, actions_per_token), device=lengths.device, generator=generator)
    return keys.argsort(dim=-1)[..., :count]


def clipped_surrogate(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                      clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per action: (−min(ratio A, clip(ratio, 1 ± clip) A), ratio); advantages broadcast over actions."""
    ratio = torch.exp(log_probs - old_log_probs)
    surrogate = torch.minimum(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    return -surrogate, ratio


def kl_k3(log_probs: torch.Tensor, reference_log_probs: torch.Tensor) -> torch.Tensor:
    """Per action: an unbiased, non-negative estimate of KL(π || π_start) from actions sampled from π."""
    difference = reference_log_probs - log_probs
    return torch.exp(difference) - difference - 1
