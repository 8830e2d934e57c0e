"""A resume goes on with the run it resumes: the run's fingerprint (what shapes its weights) is kept in every
checkpoint and export, and a resume that changes it is refused in one line naming the field and both values,
unless the change is asked for (`allow_change=[field, ...]`) and then recorded in the run. A run that ended at
`trainer.max_steps` goes on to a higher one from the same place in its data.

The fingerprint: the method; the base (`model.*` as configured, its architecture, a sketch of its weights, the
finetuned model it may stand on); the diffusion path's config (σ, d̄, ranks, start, ...) or the baseline's LoRA
settings; an RL stage's starting export and settings; the data (`data.*`, `batch_size`, `seed`: the order and
the noise). Not in it: what only sets how the same computation runs or how long (learning rate, `max_steps`,
devices, precision, workers, logging), which may change on any resume.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch import Callback
from omegaconf import DictConfig, OmegaConf

from l2d.model.checkpoint import PROBE_TOLERANCE, base_architecture, base_probe, probe_distance
from l2d.model.config import L2DConfig
from l2d.research import upgrade
from l2d.validation import InputError

log = logging.getLogger(__name__)

# Fields of the configs read here that set how the run computes, not what it learns.
COMPUTE_ONLY = {"model.dtype", "data.num_workers", "gradient_checkpointing", "method.reinforce.steps",
                "method.reinforce.rows_per_pass", "method.reinforce.validation_batch_size",
                "method.reinforce.validation_levels"}
# The diffusion path's config fields that are records, not settings (the base and its chain are fields of their own).
RECORDS = ("base_model", "finetuned", "reinforced")
PROBE = "base.probe"


def flat(prefix: str, value: Any) -> dict[str, Any]:
    """{dotted name: value} as a command line names them (data.sources.0.path); lists of plain values whole."""
    if value is None:
        return {}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    out = {}
    for key, item in items:
        out.update(flat(f"{prefix}.{key}" if prefix else str(key), item))
    return out


def run_fingerprint(cfg: DictConfig, network) -> dict[str, Any]:
    """What shapes the weights of this run, by field name (see the module's docstring)."""
    def container(key: str):
        node = OmegaConf.select(cfg, key)
        return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else None

    fingerprint = {"method": cfg.method.name, "seed": cfg.seed, "batch_size": cfg.batch_size,
                   **flat("model", container("model")), **flat("data", container("data")),
                   **flat("method.reinforce", container("method.reinforce"))}
    config = getattr(network, "config", None)
    if isinstance(config, L2DConfig):
        base, chain, reinforced = network.base, config.finetuned, config.reinforced
        fingerprint.update({key: value for key, value in config.to_dict().items() if key not in RECORDS})
    else:
        finetune = getattr(network, "finetune", network)  # an RL stage's policy wraps its Finetune
        base, chain, reinforced = finetune.model, finetune.finetuned, finetune.reinforced
        settings = flat("", container("method.network"))
        fingerprint.update(lora_rank=finetune.lora_rank, **{key: value for key, value in settings.items()
                                                            if key not in ("_target_", "lora_rank")})
    fingerprint.update({f"base.{key}": value for key, value in base_architecture(base).items()})
    fingerprint[PROBE] = base_probe(base)
    fingerprint["finetuned"] = chain["sha256"] if chain else None
    if reinforced:
        fingerprint["init"] = reinforced["init"]["sha256"]
    return {key: value for key, value in fingerprint.items() if key not in COMPUTE_ONLY}


def allowed(field: str, allow: list[str]) -> bool:
    return any(field == name or field.startswith(f"{name}.") for name in allow)


def differs(field: str, recorded: Any, current: Any) -> bool:
    if field == PROBE and recorded is not None and current is not None:  # the same weights in any dtype
        return probe_distance(recorded, current) > PROBE_TOLERANCE
    return recorded != current


def shown(field: str, recorded: Any, current: Any) -> tuple[str, str]:
    """The two values of a field as a message gives them (the base's sketch as how far apart the weights are)."""
    if field == PROBE and recorded is not None and current is not None:
        return "its base's weights", f"other weights (embedding sketch {probe_distance(recorded, current):.0%} away)"
    return repr(recorded), repr(current)


def in_message_order(fields: list[str]) -> list[str]:
    """Settings first, what the base turned out to be last; no sketch where the architecture already differs."""
    derived = [field for field in fields if field.startswith("base.")]
    if any(field != PROBE for field in derived):
        derived = [field for field in derived if field != PROBE]
    return [field for field in fields if not field.startswith("base.")] + derived


class RunGuard(Callback):
    """Keeps the run's fingerprint, and the changes allowed on resume, in every checkpoint (`state_dict`).

    `check` compares a checkpoint's with this run's before `trainer.fit`: Lightning loads the weights before it
    restores any callback, so a check made then would come after PyTorch's `size mismatch` for another width or
    rank. `on_load_checkpoint` reopens the end of a finished run, so that a higher `max_steps` or `max_epochs`
    continues it where it stood."""

    def __init__(self, fingerprint: dict[str, Any], allow_change: list[str] | tuple = ()) -> None:
        self.fingerprint = fingerprint
        self.allow_change = list(allow_change)
        self.changes: list[dict[str, Any]] = []
        unknown = [name for name in self.allow_change if not any(allowed(field, [name]) for field in fingerprint)]
        if unknown:
            groups = sorted({field.split(".")[0] for field in fingerprint})
            raise InputError(f"allow_change={unknown}: not a field of the run's fingerprint; give fields or groups "
                             f"of it ({', '.join(groups)})")

    def record(self) -> dict[str, Any]:
        """The run's fingerprint and the changes made to it on resume, for the export."""
        return {"fingerprint": self.fingerprint, "changes": self.changes}

    def state_dict(self) -> dict[str, Any]:
        return self.record()

    def check(self, checkpoint: dict, source) -> None:
        """Refuse a checkpoint of another run in one line (the fields, both values, and how to change them on
        purpose); take over the changes it records and add those allowed now."""
        state = (checkpoint.get("callbacks") or {}).get(self.state_key)
        if state is None:
            log.warning("ckpt_path=%s has no run fingerprint (saved before l2d kept one): resuming without checking "
                        "that the model, the method and the data are the same", source)
            return
        recorded = upgrade(state["fingerprint"], keep_removed=True)  # runs from before l2d.research: its fields
        changed = [field for field in sorted(set(recorded) | set(self.fingerprint))
                   if differs(field, recorded.get(field), self.fingerprint.get(field))]
        refused = [field for field in changed if not allowed(field, self.allow_change)]
        if refused:
            what = "; ".join("{} {} there, {} here".format(field, *shown(field, recorded.get(field),
                                                                        self.fingerprint.get(field)))
                             for field in in_message_order(refused))
            raise InputError(f"ckpt_path={source} is another run: {what}. What shapes the weights cannot change on "
                             f"resume: train into a new directory, or change it on purpose with "
                             f"allow_change=[{','.join(sorted(refused, key=lambda f: f.startswith('base.')))}] "
                             f"(recorded in the run)")
        step = checkpoint.get("global_step", 0)
        self.changes = list(state.get("changes", []))
        for field in changed:
            before, after = recorded.get(field), self.fingerprint.get(field)
            if field == PROBE:
                before, after = shown(field, before, after)
            self.changes.append({"step": step, "field": field, "from": before, "to": after})
            log.warning("resuming at step %d with %s changed from %s to %s (allow_change)", step, field,
                        *shown(field, recorded.get(field), self.fingerprint.get(field)))

    def on_load_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        loops = checkpoint["loops"]["fit_loop"]
        if ended(loops):
            reopen(loops)


def recorded_fingerprint(checkpoint: dict) -> dict[str, Any] | None:
    """The run fingerprint a checkpoint keeps; None before runs kept one. Lightning keys a callback's state by its
    class's qualified name (Callback.state_key)."""
    state = (checkpoint.get("callbacks") or {}).get(RunGuard.__qualname__)
    return None if state is None else state["fingerprint"]


def ended(loops: dict) -> bool:
    """Whether a checkpoint holds the end of its run: Lightning closes the epoch when a run stops (at max_steps,
    should_stop, or the end of its data), and its own restart logic then trains no more in that epoch, whether its
    data was all read or not."""
    epoch, batches = loops["epoch_progress"]["current"], loops["epoch_loop.batch_progress"]["current"]
    return epoch["started"] > 0 and epoch["completed"] == epoch["started"] and 0 < batches["completed"] == \
        batches["ready"]


def reopen(loops: dict) -> None:
    """The loop state of a run's end, made the one a checkpoint saved after the same optimizer step holds (the
    epoch not processed, the last batch not completed, `_batches_that_stepped` one behind), which Lightning takes up
    where it stood: within the epoch if its data was not all read, or at the next epoch."""
    for progress in (loops["epoch_progress"]["total"], loops["epoch_progress"]["current"]):
        progress["processed"] -= 1
        progress["completed"] -= 1
    for progress in (loops["epoch_loop.batch_progress"]["total"], loops["epoch_loop.batch_progress"]["current"]):
        progress["completed"] -= 1
    loops["epoch_loop.state_dict"]["_batches_that_stepped"] -= 1


def check_room(checkpoint: dict, source, max_steps: int, max_epochs: int | None) -> None:
    """A resume that would train no step is refused in one line that says which limit to raise."""
    step = checkpoint["global_step"]
    if max_steps != -1 and step >= max_steps:
        raise InputError(f"ckpt_path={source} is at step {step} and trainer.max_steps={max_steps}: nothing to train; "
                         f"raise trainer.max_steps to train on")
    loops = checkpoint["loops"]["fit_loop"]
    mid_epoch = ended(loops) and not loops["epoch_loop.batch_progress"]["is_last_batch"]
    epochs = loops["epoch_progress"]["current"]["completed"] - mid_epoch
    if max_epochs is None:  # Lightning's default
        max_epochs = 1000 if max_steps == -1 else -1
    if max_epochs != -1 and epochs >= max_epochs:
        raise InputError(f"ckpt_path={source} has read all its data {epochs} time(s) (trainer.max_epochs="
                         f"{max_epochs}) by step {step}: nothing to train; raise trainer.max_epochs to train on "
                         f"(each epoch is a new shuffle of the same data)")
    if ended(loops):
        log.warning("ckpt_path=%s is the end of its run (step %d): training on from there%s, the learning-rate "
                    "schedule now that of a run to %s", source, step, " in the same epoch" if mid_epoch else "",
                    f"step {max_steps}" if max_steps != -1 else f"epoch {max_epochs}")
