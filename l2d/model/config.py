"""L2DConfig: the hyper-parameters of the diffusion path (the paper's §2–3)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from l2d import research
from l2d.checks import number

TIMESTEP_SAMPLING = ("uniform", "cosmap")
STARTS = ("zero", "mirror")


@dataclass
class L2DConfig:
    """Everything that shapes the diffusion path; saved next to its weights.

    sigma: std of the noise x0 ~ N(0, sigma^2 I) (the paper's noise rescaling).
    dim: width d̄ of the diffusion vocabulary V_y (and of the token x_t).
    translation_hidden: hidden width of the MLP that maps x_t to the LM width d.
    conditioning_dim: width of the timestep (+ class) conditioning vector.
    frequency_dim: number of sinusoidal features of t.
    lora_rank / lora_alpha: LoRA on the LM's q/o/gate/up/down inside the diffusion path.
    full_path: train full copies of those projections instead of LoRA (the `l2d_full` variant).
    timestep_sampling: `uniform` t ~ U[0,1], or `cosmap` t = 1 - 1/(tan(pi u / 2) + 1).
    start: how the path starts. `mirror` (the default) departs from the paper: the stream also carries the slot's
        token embedding and starts open, a copy of the LM's computation at that position (gates 1, w_d(t) equal on
        every channel), so the fused model still equals the base and every group learns from the first step
        (measured on CPU: 34.4% against 6.6% after 200 steps, experiments/smollm2_short_answers/notes.md).
        `zero` is the paper's (the reference's adaLN-Zero start: the stream begins at the translated x_t; w_d, every
        residual gate and LoRA B at zero; only w_d has a gradient at first). Both are exactly the base at t = 0.
    num_classes: J guidance classes 1..J (0 disables guidance); class 0 is the null class.
    class_dropout: probability p of replacing a class with the null class during training.
    class_names: optional names of classes 1..J, so evaluation can pick a class by task.
    research: the research options the path trains with (l2d/research), {name: setting}, e.g. {"drafts": 0.5};
        empty, the default, is the paper's training. Only those that are on are kept.
    base_model: how to load the frozen base again (name or path); recorded by from_pretrained.
    finetuned: when the frozen LM is a finetuned model (a lora/full export applied to base_model),
        that export's record {"path", "method", "base_model", "sha256"}; loading rebuilds the chain.
    reinforced: when the path went on training by RL through its denoising chain (l2d.rl), the record of
        that stage: {"init": the L2D export it started from {"path", "sha256"}, "task", "steps", "partial_credit"
        (whether the reward was the verifier's partial credit rather than its verdict)}.
    """

    sigma: float = 64.0
    dim: int = 256
    translation_hidden: int = 256
    conditioning_dim: int = 256
    frequency_dim: int = 256
    lora_rank: int = 32
    lora_alpha: float = 32.0
    full_path: bool = False
    timestep_sampling: str = "uniform"
    start: str = "mirror"
    num_classes: int = 0
    class_dropout: float = 0.2
    class_names: list[str] = field(default_factory=list)
    research: dict = field(default_factory=dict)
    gradient_checkpointing: bool = False
    base_model: str | None = None
    finetuned: dict | None = None
    reinforced: dict | None = None

    def __post_init__(self) -> None:
        for name in ("sigma", "dim", "translation_hidden", "conditioning_dim", "frequency_dim", "lora_rank",
                     "lora_alpha", "num_classes", "class_dropout"):  # a string would end in a TypeError below
            number(getattr(self, name), name)
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        for name in ("dim", "translation_hidden", "conditioning_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.frequency_dim < 2 or self.frequency_dim % 2:
            raise ValueError(f"frequency_dim must be an even number >= 2, got {self.frequency_dim}")
        if not self.full_path and self.lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1 (or full_path=True), got {self.lora_rank}")
        if self.lora_alpha <= 0:
            raise ValueError(f"lora_alpha must be > 0, got {self.lora_alpha}")
        if self.timestep_sampling not in TIMESTEP_SAMPLING:
            raise ValueError(f"timestep_sampling must be one of {TIMESTEP_SAMPLING}, got {self.timestep_sampling!r}")
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if not 0.0 <= self.class_dropout < 1.0:
            raise ValueError(f"class_dropout must be in [0, 1), got {self.class_dropout}")
        self.research = research.checked(self.research)
        self.class_names = list(self.class_names)
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> L2DConfig:
        """The config an export records (older ones too: l2d.research.upgrade)."""
        values = research.upgrade(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown L2DConfig fields {unknown}; known fields are {sorted(known)}")
        return cls(**values)
