"""What `python -m l2d.train` leaves to load, and the one answer to what it is.

An export is a directory: an L2D export (the diffusion path alone, `l2d_config.json`) or a lora/full export (the
finetuned weights, `l2d_finetune.json`), either maybe after an RL stage. Its own record says what it is: L2D or not,
its method name, and its provenance, base -> finetuned -> L2D -> RL. A training checkpoint (`<run>/checkpoints/*.ckpt`)
loads as the export its run would have written at that step: the network rebuilt from the run's composed config
(`<run>/.hydra/config.yaml`) and checked against the run fingerprint the checkpoint keeps (l2d.lightning.run_guard),
then its trainable state loaded. Evaluation, RL, lm-eval and inspect load through here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from l2d import research
from l2d.lightning.run_guard import PROBE, differs, in_message_order, recorded_fingerprint, shown
from l2d.model.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    base_architecture,
    base_probe,
    check_base,
    load_trainable_state,
    read_meta,
)
from l2d.model.config import L2DConfig
from l2d.model.digest import ExportError, verify_export, written_with_digest
from l2d.model.finetune import FINETUNE_FILE, finetuned_base, read_finetune_info
from l2d.model.l2d import L2DModel
from l2d.model.loading import load_base_model
from l2d.model.main_path import CausalLM
from l2d.model.origin import origin_of
from l2d.model.weights import load_weights
from l2d.validation import InputError

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIX = ".ckpt"
RUN_CONFIG = Path(".hydra") / "config.yaml"  # what Hydra writes into every run directory
RUN_HYDRA = Path(".hydra") / "hydra.yaml"  # the run's working directory, for its relative paths
# The diffusion path's settings a run fingerprint keeps (not the records: base, chain, RL stage).
L2D_SETTINGS = tuple(f.name for f in dataclasses.fields(L2DConfig)
                     if f.name not in ("base_model", "finetuned", "reinforced", "gradient_checkpointing"))


# ---- what a model is ------------------------------------------------------------------------------------
def is_l2d(model_or_method: nn.Module | str) -> bool:
    """Whether a model, or a method name (l2d_lora, l2d_full, l2d_rl, ...), is L2D: a frozen LM plus a diffusion
    path. Everything else (the base, lora/full baselines, their RL stages) decodes as a plain LM."""
    if isinstance(model_or_method, str):
        return model_or_method.startswith("l2d")
    return isinstance(model_or_method, L2DModel)


def method_name(l2d: bool, record: Mapping[str, Any]) -> str:
    """What results and reports call a trained model: l2d_lora, l2d_full, lora or full, `_rl` after an RL stage.
    `record`: an L2D export's config (full_path, reinforced) or a lora/full export's record (method, reinforced)."""
    kind = ("l2d_full" if record.get("full_path") else "l2d_lora") if l2d else record["method"]
    return kind + ("_rl" if record.get("reinforced") else "")


def network_method(network: nn.Module) -> str:
    """method_name of a network in memory: an L2DModel, a Finetune, or an RL stage's TokenPolicy around one."""
    if is_l2d(network):
        return method_name(True, network.config.to_dict())
    finetune = getattr(network, "finetune", network)
    return method_name(False, {"method": finetune.method, "reinforced": finetune.reinforced})


@dataclass(frozen=True)
class Export:
    """An export directory and its record, checked against the export's digest: `l2d` (an L2D export, else
    lora/full); `record` (L2D: its L2DConfig as saved; lora/full: its l2d_finetune.json)."""

    path: Path
    l2d: bool
    record: dict

    @property
    def method(self) -> str:
        return method_name(self.l2d, self.record)

    @property
    def base_model(self) -> str | None:
        return self.record.get("base_model")

    @property
    def finetuned(self) -> dict | None:
        """The finetuned model it was trained on ({"path", "method", "base_model", "sha256"}), if any."""
        return self.record.get("finetuned")

    @property
    def reinforced(self) -> dict | None:
        """Its RL stage ({"init": the export it started from, "task", "steps", "partial_credit"}), if any."""
        return self.record.get("reinforced")

    def provenance(self) -> list[dict]:
        """The chain this export ends, from the raw base: {"stage": "base", "name"}; each finetuned model under it
        {"stage": "finetuned", "method", "path", "sha256"} (an earlier one read from its own export, where it
        still is); the export an RL stage started from {"stage": "rl_init", "method", "path", "sha256"}; and this
        export {"stage": <its method>, "path"}."""
        chain = [{"stage": "finetuned", **link} for link in finetuned_links(self.finetuned)]
        if self.reinforced:
            chain.append({"stage": "rl_init", **self.reinforced["init"]})
        return [{"stage": "base", "name": self.base_model}, *chain, {"stage": self.method, "path": str(self.path)}]

    def describe(self) -> dict:
        """The export as results record it (results.json's "model")."""
        return {"method": self.method, "base_model": self.base_model, "finetuned": self.finetuned,
                "provenance": self.provenance()}


def finetuned_links(finetuned: dict | None) -> list[dict]:
    """The finetuned models a chain record stands on, the earliest first (a lora export may itself have been
    trained on another one: its own record says so, read where the export still is)."""
    if not finetuned:
        return []
    path = Path(finetuned["path"])
    earlier = read_finetune_info(path).get("finetuned") if (path / FINETUNE_FILE).is_file() else None
    link = {key: finetuned[key] for key in ("method", "path", "sha256") if key in finetuned}
    return [*finetuned_links(earlier), link]


def read_export(path: str | Path) -> Export:
    """The record of an export directory; refused in one line when the directory is neither kind of export."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return Export(path, True, read_meta(path)["config"])
    if (path / FINETUNE_FILE).is_file():
        return Export(path, False, read_finetune_info(path))
    raise ValueError(f"{path} is neither an L2D export ({CONFIG_FILE}) nor a lora/full export ({FINETUNE_FILE})")


# ---- the base an export stands on ----------------------------------------------------------------------
def recorded_base(base_model: str, finetuned: dict | None, dtype=torch.float32) -> tuple[nn.Module, Any]:
    """(base, tokenizer) as a record names them: the base model, with the finetuned model it was trained on
    rebuilt and refused when its weights changed since."""
    base, tokenizer = load_base_model(base_model, dtype=dtype)
    if finetuned:
        base = finetuned_base(base, finetuned["path"], expected=finetuned)
    return base, tokenizer


def load_l2d(path: str | Path, base: nn.Module | None = None, dtype=None, cls: type = L2DModel) -> L2DModel:
    """An L2D model from an export directory or a training checkpoint of an L2D run (what L2DModel.from_pretrained
    does); the base loaded as recorded unless given, and refused when it is not the recorded one."""
    path = Path(path)
    if path.suffix == CHECKPOINT_SUFFIX:
        network = load_training_checkpoint(path, dtype=dtype or torch.float32, base=base).network
        if not is_l2d(network):
            raise ValueError(f"{path} is a checkpoint of a {network_method(network)} run, not of an L2D one")
        return network
    meta = read_meta(path)
    verify_export(path, has_digest=written_with_digest(meta))
    config = L2DConfig.from_dict(meta["config"])
    if base is None:
        if not config.base_model:
            raise ValueError(f"{path}: the checkpoint names no base model; pass base=")
        base, _ = recorded_base(config.base_model, config.finetuned, dtype or torch.float32)
    check_base(meta, base, path)
    model = cls(base, config)
    weights = path / WEIGHTS_FILE
    load_trainable_state(model, load_weights(weights), weights)
    return model.eval()  # as transformers' from_pretrained: ready for inference


def load(checkpoint: str | Path | None, dtype: torch.dtype, base_model: str | None = None,
         model: DictConfig | None = None) -> tuple[nn.Module, Any, dict]:
    """(model ready to decode, tokenizer, what it is) of checkpoint=null (the base `model`, a conf/model config),
    an export directory (L2D, or lora/full merged into its base), or a training checkpoint (.ckpt) of a run.
    `base_model` replaces the base the export records (e.g. a local copy of it)."""
    if checkpoint is None:
        base, tokenizer = instantiate(model, dtype=dtype)
        return CausalLM(base), tokenizer, {"method": "base", "base_model": origin_of(base).name,
                                           "trainable_parameters": None}
    path = Path(checkpoint)
    if path.suffix == CHECKPOINT_SUFFIX and path.is_file():
        loaded = load_training_checkpoint(path, dtype, base_model=base_model)
        network = loaded.network
        lm = network if is_l2d(network) else CausalLM(getattr(network, "finetune", network).merged_base())
        return lm.eval(), loaded.tokenizer, loaded.describe()
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint={path} is neither a directory nor a {CHECKPOINT_SUFFIX} file (give a "
                                f"run's export/ directory, or one of its checkpoints/*{CHECKPOINT_SUFFIX})")
    export = read_export(path)
    base, tokenizer = recorded_base(base_model or export.base_model, export.finetuned if export.l2d else None, dtype)
    if export.l2d:
        lm = load_l2d(path, base=base)
        return lm, tokenizer, {**export.describe(), "base_model": base_model or export.base_model,
                               "sigma": lm.config.sigma, "trainable_parameters": lm.num_trainable_parameters()}
    # lora/full: its own record rebuilds any model it was trained on, then merges it in
    lm = CausalLM(finetuned_base(base, path)).eval()
    return lm, tokenizer, {**export.record, **export.describe()}


# ---- a training checkpoint -----------------------------------------------------------------------------
@dataclass
class TrainingCheckpoint:
    """A run's network with a checkpoint's trainable state, and where it came from."""

    network: nn.Module
    tokenizer: Any
    path: Path
    run: Path
    step: int

    def describe(self) -> dict:
        """The checkpoint as results record it (results.json's "model"), with its run and step."""
        network = self.network
        if is_l2d(network):
            config = network.config
            origin = {"base_model": config.base_model, "finetuned": config.finetuned, "sigma": config.sigma}
        else:
            finetune = getattr(network, "finetune", network)
            origin = {"base_model": finetune.base_name, "finetuned": finetune.finetuned}
        return {"method": network_method(network), **origin, "trainable_parameters": network.num_trainable_parameters(),
                "run": str(self.run), "step": self.step}


def run_directory(path: Path) -> Path:
    """The run a checkpoint belongs to: the directory above it holding the run's composed config."""
    for directory in (path.parent, path.parent.parent):
        if (directory / RUN_CONFIG).is_file():
            return directory
    raise InputError(f"checkpoint={path}: no {RUN_CONFIG} beside it or in the directory above (a training "
                     f"checkpoint is scored with the composed config of the run that wrote it: give a .ckpt under "
                     f"<run>/checkpoints/ with its run's {RUN_CONFIG.parent}/ directory)")


def run_path(run: Path, value: str) -> Path:
    """A path of a run's config as the run saw it: relative ones from the directory it was started in."""
    path = Path(value).expanduser()
    if path.is_absolute() or not (run / RUN_HYDRA).is_file():
        return path.resolve()
    started_in = OmegaConf.select(OmegaConf.load(run / RUN_HYDRA), "hydra.runtime.cwd")
    return (Path(started_in) / path).resolve() if started_in else path.resolve()


def build_network(cfg: DictConfig, base: nn.Module, class_names: list[str], recorded: dict | None = None):
    """The method's network around `base`; with guidance, one class per data class (0 = null). `recorded`: the
    diffusion path's settings a checkpoint's run fingerprint keeps, which win over the config (a resume may have
    changed one since, with allow_change). A run's config from before l2d.research (drafts, chain_states at the
    top of the path's config) builds the path it trained."""
    network = OmegaConf.to_container(cfg.method.network, resolve=True)
    if "config" in network:
        network["config"] = research.upgrade(network["config"])
    if cfg.method.get("guidance"):
        if not class_names:
            raise ValueError("method.guidance=true needs labelled data, but the data has no class names")
        if "config" not in network:
            raise ValueError(f"method.guidance=true needs an L2D method (l2d_lora, l2d_full), not {cfg.method.name}")
        network["config"].update(num_classes=len(class_names), class_names=list(class_names))
    if recorded and "config" in network:
        network["config"].update({key: recorded[key] for key in L2D_SETTINGS if key in recorded})
    return instantiate(network, base=base)


def check_run_base(fingerprint: dict, base: nn.Module, source: Path) -> None:
    """The base given to a checkpoint is the one its run trained on: architecture and weights, as the fingerprint
    recorded them."""
    current = {**{f"base.{key}": value for key, value in base_architecture(base).items()}, PROBE: base_probe(base)}
    changed = [field for field in current if field in fingerprint and fingerprint[field] is not None
               and current[field] is not None and differs(field, fingerprint[field], current[field])]
    if changed:
        what = "; ".join("{} {} there, {} here".format(field, *shown(field, fingerprint[field], current[field]))
                         for field in in_message_order(changed))
        raise ExportError(f"checkpoint={source} was trained on another base than the one given: {what}. Load the "
                          "run's own base (leave base_model unset) or a copy of it")


def load_training_checkpoint(path: str | Path, dtype: torch.dtype = torch.float32, base_model: str | None = None,
                             base: nn.Module | None = None) -> TrainingCheckpoint:
    """The network of the run that wrote `path`, with the checkpoint's trainable parameters (the keys under
    "network."; checkpoints hold nothing else of the model), ready for inference.

    Rebuilt from `<run>/.hydra/config.yaml`: the base (`base_model` or `base` replaces the configured one), the
    finetuned model it stands on, the method's network, or an RL stage's starting policy. The checkpoint's run
    fingerprint then decides: its diffusion-path settings are the ones used, and a base other than the one it
    trained on is refused. A .ckpt is a pickle: load only checkpoints of your own runs."""
    path = Path(path).resolve()
    run = run_directory(path)
    cfg = OmegaConf.load(run / RUN_CONFIG)
    checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    state = checkpoint.get("state_dict")
    if not state:
        raise ValueError(f"{path} holds no weights (a checkpoint written by a sharding strategy's loader path?)")
    fingerprint = recorded_fingerprint(checkpoint)
    if fingerprint is None:
        log.warning("%s has no run fingerprint (saved before l2d kept one): its network is rebuilt from %s alone",
                    path, run / RUN_CONFIG)
    if "reinforce" in cfg.method:
        if base is not None or base_model is not None:
            raise InputError(f"checkpoint={path} is of an RL stage, which stands on its starting export's base: "
                             "leave base_model unset")
        network, tokenizer = rl_stage_network(cfg, run, dtype)
    else:
        network, tokenizer = supervised_network(cfg, run, fingerprint, dtype, base_model, base, path)
    load_run_state(network, state, path)
    return TrainingCheckpoint(network.eval(), tokenizer, path, run, int(checkpoint.get("global_step", 0)))


def supervised_network(cfg: DictConfig, run: Path, fingerprint: dict | None, dtype, base_model: str | None,
                       base: nn.Module | None, source: Path):
    """The network of a next-token or L2D run, on its base (and the finetuned model it trained on)."""
    tokenizer = None
    if base is None:
        base, tokenizer = (load_base_model(base_model, dtype=dtype) if base_model
                           else instantiate(cfg.model, dtype=dtype))
    if fingerprint is not None:
        check_run_base(fingerprint, base, source)
    if cfg.get("finetuned"):
        expected = {"sha256": fingerprint["finetuned"]} if fingerprint and fingerprint.get("finetuned") else None
        base = finetuned_base(base, run_path(run, cfg.finetuned), expected=expected)
    recorded = research.upgrade(fingerprint) if fingerprint else {}
    if cfg.method.get("guidance") and "class_names" not in recorded:
        raise InputError(f"checkpoint={source}: its run trained with guidance classes, which only the run "
                         "fingerprint of newer checkpoints records; score the run's export/ instead")
    return build_network(cfg, base, recorded.get("class_names", []), recorded), tokenizer


def rl_stage_network(cfg: DictConfig, run: Path, dtype):
    """An RL stage's policy, from the export it started at, marked with the stage's record."""
    from l2d.rl.start import mark_reinforced, starting_policy

    network, tokenizer, start = starting_policy(run_path(run, cfg.init), cfg.method.name, dtype)
    settings = OmegaConf.to_container(cfg.method.reinforce, resolve=True)
    mark_reinforced(network, start, settings["task"]["name"], settings)
    return network, tokenizer


def load_run_state(network: nn.Module, state: dict, source: Path) -> None:
    """A checkpoint's trainable parameters (keys "network.<name>") into the network, all or nothing."""
    weights = {key.removeprefix("network."): value for key, value in state.items() if key.startswith("network.")}
    expected = {name for name, parameter in network.named_parameters() if parameter.requires_grad}
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise ValueError(f"{source} does not match the network its run's config builds: missing {missing[:3]}"
                         f"{'...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}"
                         f"{'...' if len(unexpected) > 3 else ''}")
    network.load_state_dict(weights, strict=False)
