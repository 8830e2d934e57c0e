"""An RL stage's settings, `method.reinforce`: their types, defaults and checks, stated once.

`Rollouts` is what l2d.lightning.reinforce.ReinforceModule takes; `Reinforce` adds what the stage's command line sets
around it (how many rollout batches, the prompts with their verifier, the validation problems) and is the schema Hydra
composes conf/method/l2d_rl.yaml onto (l2d.schema), so that file states only the prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from l2d.checks import flag, number, one_of, whole, wholes
from l2d.diffusion.solver import FIXED_STAGES


@dataclass
class Rollouts:
    """How each rollout batch is drawn, rewarded and learned from.

    prompts_per_step, group_size: prompts per rollout batch, and completions per prompt, compared with one another
        (the advantage).
    levels: the level counts a rollout batch draws one from, so that no single budget of steps is trained for
        (L2D: >= 2, levels 1 is the frozen LM; a plain LM ignores them).
    solver, t_final: fixed grids only, every evaluation is an action.
    x1_temperature: x̂'s token is sampled at it (the policy must be stochastic); anneal_x1_temperature would take it
        to 0 along t and make the last actions deterministic.
    temperature: the emitted token's.
    actions_per_token: of a token's chain, scored per update (an unbiased estimate of the chain's mean).
    clip: PPO's ratio clip, which binds only with updates > 1; updates: optimizer steps per rollout batch.
    kl: the weight of the KL to the starting path (measured, at 0, every kl_every rollout batches).
    partial_credit: the reward is the verifier's verdict, 1 or 0; true: its partial credit where it gives one
        (reasoning-gym: '7979' for 79 scores 0.5, which a policy can learn to farm).
    max_new_tokens: per completion; rows_per_pass: completions per gradient pass (memory).
    validation_levels, validation_batch_size: validation decodes greedily at each, as python -m l2d.evaluate
        protocol=greedy does.
    """

    prompts_per_step: int = 4
    group_size: int = 8
    levels: list[int] = field(default_factory=lambda: [2, 4, 8, 16])
    solver: str = "midpoint"
    t_final: float = 1.0
    x1_temperature: float = 1.0
    anneal_x1_temperature: bool = False
    temperature: float = 1.0
    actions_per_token: int = 4
    clip: float = 0.2
    updates: int = 1
    kl: float = 0.0
    kl_every: int = 5
    partial_credit: bool = False
    max_new_tokens: int = 8
    rows_per_pass: int = 16
    validation_levels: list[int] = field(default_factory=lambda: [2, 8])
    validation_batch_size: int = 100

    def __post_init__(self) -> None:
        for name, minimum in (("prompts_per_step", 1), ("group_size", 2), ("actions_per_token", 1), ("updates", 1),
                              ("max_new_tokens", 1), ("rows_per_pass", 1), ("kl_every", 1),
                              ("validation_batch_size", 1)):
            whole(getattr(self, name), name, minimum=minimum)
        for name in ("temperature", "x1_temperature", "kl"):
            number(getattr(self, name), name, minimum=0)
        number(self.clip, "clip", above=0)
        number(self.t_final, "t_final", above=0)
        one_of(self.solver, "solver", FIXED_STAGES)
        wholes(self.levels, "levels", minimum=1)
        wholes(self.validation_levels, "validation_levels", minimum=1)
        flag(self.anneal_x1_temperature, "anneal_x1_temperature")
        flag(self.partial_credit, "partial_credit", "true (the verifier's partial credit as reward) or false "
                                                    "(its verdict, 1 or 0)")
        self.levels, self.validation_levels = list(self.levels), list(self.validation_levels)


@dataclass
class Reinforce(Rollouts):
    """method.reinforce: `Rollouts`, and steps: rollout batches; task: the prompts and the verifier whose score is the
    reward, validation: the problems validated on, each {name: a task of l2d.tasks, options: its arguments}."""

    steps: int = 60
    task: Any = MISSING
    validation: Any = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        whole(self.steps, "steps", minimum=1)

    def rollouts(self) -> Rollouts:
        return Rollouts(**{name: getattr(self, name) for name in Rollouts.__dataclass_fields__})

    def tasks(self):
        """(task, validation): the reward is a task's verifier, so each must be a task l2d can score."""
        from l2d.tasks.registry import TASKS, get_task

        built = []
        for name in ("task", "validation"):
            spec = getattr(self, name)
            if not isinstance(spec, Mapping) or "name" not in spec:
                raise ValueError(f"{name} must be {{name: <task>, options: {{...}}}}, got {spec!r}")
            try:
                built.append(get_task(spec["name"], **spec.get("options", {})))
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{name}: {error} (the reward is a task's verifier: one of {', '.join(TASKS)}, or "
                                 "reasoning_gym/<dataset>)") from None
        return tuple(built)
