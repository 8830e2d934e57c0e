"""Typed configs: each entry point's own settings as a dataclass, with their types, defaults and checks.

`register` stores them in Hydra's ConfigStore (group `schema`); conf/train.yaml, evaluate.yaml and inspect.yaml list
theirs first in their defaults list, conf/method/l2d_rl.yaml lists l2d.rl.settings.Reinforce, so that the YAML files
hold only choices (config groups, presets) and every default is stated once, here or in the class that uses it
(L2DConfig, Solver). Each dataclass checks its own fields in `__post_init__`; l2d.validation builds them from the
composed config before anything loads, and adds what a schema cannot say (files, devices, how the groups fit).

The stored nodes hold the defaults as plain values, not OmegaConf's typed nodes: a value of the wrong type
(`sigma=abc`) then reaches the dataclass's check and its one line naming the field and what is allowed, instead
of failing composition with OmegaConf's multi-line error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from l2d.checks import device, dtype, flag, number, one_of, part, whole
from l2d.model.config import L2DConfig
from l2d.model.generate import COMPILE_MODES, Solver
from l2d.research import REMOVED
from l2d.rl.settings import Reinforce


@dataclass
class Train:
    """python -m l2d.train's own settings; conf/train.yaml composes its groups (model, method, data, ...) onto them.

    The shorthands the paper's ablations vary reach the method's objects by interpolation (conf/method).
    sigma: the noise std of x0. timestep_sampling: uniform | cosmap.
    start: mirror departs from the paper: the path starts open, a copy of the LM (on CPU 5x the accuracy after 200
        steps, l2d/model/config.py); zero is the paper's start.
    drafts: a research option (l2d/research, docs/research.md): the share of training x_t showing the LM's own draft
        of the token; 0 is the paper's training. chain_states: removed, measured harmful: setting it is refused.
    lr: the peak learning rate, lora_rank: the method's (each method carries the paper's values).
    batch_size: the effective batch; micro-batches (data.micro_batch_size) accumulate up to it.
    finetuned: a lora/full export (its run's export/) to train on instead of the raw base.
    init: an RL stage (method=l2d_rl, lora_rl): the export whose policy it trains on.
    ckpt_path: resume from a checkpoint of a run with the same method, model and data.
    allow_change: resume: fields of the run's fingerprint it may change on purpose, e.g. [sigma] (docs/runs.md).
    export: write the trained weights (L2D: the diffusion path only) under export/.
    solver: the decoding the export's card records (conf/solver).
    """

    seed: int = 0
    sigma: float = L2DConfig.sigma
    timestep_sampling: str = L2DConfig.timestep_sampling
    start: str = L2DConfig.start
    drafts: float = 0.0
    chain_states: float | None = None
    lr: float = "${method.lr}"  # interpolations: resolved in the composed config
    lora_rank: int | None = "${method.lora_rank}"
    batch_size: int = 32
    finetuned: str | None = None
    init: str | None = None
    ckpt_path: str | None = None
    allow_change: list[str] = field(default_factory=list)
    export: bool = True
    solver: Solver = field(default_factory=Solver)

    def __post_init__(self) -> None:
        whole(self.seed, "seed")
        whole(self.batch_size, "batch_size", minimum=1)
        number(self.lr, "lr", above=0)
        flag(self.export, "export")
        for name, why in REMOVED.items():  # a research option's shorthand, refused with why unless off
            if getattr(self, name, None):
                raise ValueError(f"{name}={getattr(self, name)}: {why}")
        names = self.allow_change
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError(f"allow_change must be a list of the run's fingerprint fields, like [sigma,lora_rank], "
                             f"got {names!r}")
        if names and not self.ckpt_path:
            raise ValueError(f"allow_change={names} lets a resumed run change its fingerprint: give "
                             f"ckpt_path=<checkpoint> too (a new run has nothing to change)")
        self.solver = part(Solver, self.solver, "solver")


@dataclass
class Sandbox:
    """Code tasks (humaneval, mbpp) run model-written programs in bubblewrap (l2d/tasks/sandbox.py).
    allow_weak: run them even without it, where they can read every file this user can."""

    allow_weak: bool = False

    def __post_init__(self) -> None:
        flag(self.allow_weak, "allow_weak")


@dataclass
class Scoring:
    """What an evaluation and an inspection share: conf/protocol's emitted token (protocol: its name, temperature: the
    emitted token's) and conf/solver's diffusion, the device and the dtype. guidance: the classifier-free guidance
    weight w_g >= 1 (models trained with method.guidance=true)."""

    checkpoint: str | None = None
    base_model: str | None = None
    guidance: float | None = None
    max_new_tokens: int | None = None
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    protocol: str = MISSING
    temperature: float = MISSING
    solver: Solver = field(default_factory=Solver)

    def __post_init__(self) -> None:
        whole(self.seed, "seed")
        whole(self.max_new_tokens, "max_new_tokens", minimum=1, optional=True)
        number(self.temperature, "temperature", minimum=0)
        number(self.guidance, "guidance", minimum=1, optional=True)
        device(self.device)
        dtype(self.dtype)
        self.solver = part(Solver, self.solver, "solver")


@dataclass
class Evaluate(Scoring):
    """python -m l2d.evaluate's own settings; conf/evaluate.yaml composes its groups (model, protocol, solver, task,
    logger) onto them.

    checkpoint: an export dir of `python -m l2d.train` (L2D diffusion path, or lora/full weights) or one of its
        checkpoints/*.ckpt; null scores the base model alone. base_model: replaces the base an L2D checkpoint records
        (e.g. a local copy of it).
    compile: the L2D fast path: torch.compile mode of one evaluation (reduce-overhead = CUDA graphs).
    max_new_tokens: null, the task's own. token_search: beam search, e.g. {hypotheses:15,alpha:1.0,temperature:0.5}.
    limit: score only the first N problems. label: the row name in reports.
    device: auto | cpu | cuda. dtype: float32 | bfloat16 | auto: bfloat16 on GPU, and on CPUs with bfloat16 matrix
        units (AMX, AVX512-BF16) when batch_size > 1; float32 at batch 1 and on other CPUs (docs/performance.md).
    """

    samples: int = MISSING  # completions per problem (conf/protocol)
    compile: str | None = None
    token_search: dict | None = None
    limit: int | None = None
    batch_size: int = 16
    label: str | None = None
    progress: bool = True
    sandbox: Sandbox = field(default_factory=Sandbox)

    def __post_init__(self) -> None:
        super().__post_init__()
        whole(self.samples, "samples", minimum=1)
        whole(self.batch_size, "batch_size", minimum=1)
        whole(self.limit, "limit", minimum=1, optional=True)
        one_of(self.compile, "compile", COMPILE_MODES, optional=True)
        flag(self.progress, "progress")
        if self.token_search is not None:
            if not isinstance(self.token_search, Mapping):
                raise ValueError(f"token_search must be null or a mapping like {{hypotheses:15,alpha:1.0}}, "
                                 f"got {self.token_search!r}")
            whole(self.token_search.get("hypotheses", 1), "token_search.hypotheses", minimum=1)
            whole(self.token_search.get("resample_every", 0), "token_search.resample_every", minimum=0)
        self.sandbox = part(Sandbox, self.sandbox, "sandbox")


@dataclass
class Inspect(Scoring):
    """python -m l2d.inspect's own settings; conf/inspect.yaml composes its groups (model, protocol, solver) onto them.

    checkpoint: an L2D export dir of `python -m l2d.train`; null: the base with a freshly initialised, untrained path.
    prompt: the user turn (required). chat: wrap it in the model's chat template (false: the raw text).
    guidance_class: a class name of the model (with guidance). top_k: tokens listed per evaluation in trajectory.txt.
    """

    prompt: str = MISSING
    chat: bool = True
    max_new_tokens: int = 32
    guidance_class: str | None = None
    top_k: int = 5

    def __post_init__(self) -> None:
        if self.prompt == MISSING:
            raise ValueError('prompt= is required: the user turn to decode, e.g. prompt="What is 17 + 25?"')
        super().__post_init__()
        flag(self.chat, "chat")
        whole(self.top_k, "top_k", minimum=1)


SCHEMAS: dict[str, type] = {"train": Train, "evaluate": Evaluate, "inspect": Inspect, "reinforce": Reinforce}


def defaults(schema: type) -> dict[str, Any]:
    """The dataclass's defaults as plain values (interpolations and ??? kept as strings)."""
    return OmegaConf.to_container(OmegaConf.structured(schema))


def register() -> None:
    """Store the schemas as schema/<name> in Hydra's ConfigStore (once per process; before composing)."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(group="schema", name=name, node=defaults(schema), provider="l2d")
