"""Bad input is refused before any work, in one line that names the field or file and what is allowed.

Each entry point checks its composed config first (`check_train`, `check_evaluate`, `check_bench`,
`check_inspect`), before a model, a dataset or a checkpoint is loaded. `one_line` wraps a Hydra entry
point so that such an error, or a bad record, a missing sandbox or an unreadable weight file found
later, ends the program with that line (exit status 1) instead of a traceback; HYDRA_FULL_ERROR=1
shows the traceback as well.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from l2d.config import accumulation
from l2d.data.hub import HubUnavailable
from l2d.data.invalid import InvalidRecordError
from l2d.files import DiskFull
from l2d.model.checkpoint import CONFIG_FILE
from l2d.model.digest import ExportError
from l2d.model.dtypes import DTYPES
from l2d.model.finetune import FINETUNE_FILE
from l2d.model.groups import checked_multipliers
from l2d.model.weights import UnreadableWeights
from l2d.research import REMOVED
from l2d.run_lock import RunDirectoryBusy
from l2d.tasks.code import CodeTask
from l2d.tasks.registry import TASKS, get_task
from l2d.tasks.sandbox import SandboxUnavailable, require_isolation
from l2d.tasks.sources import TaskDataError

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
BENCH_METHODS = ("l2d_lora", "l2d_full", "lora", "full")
_ABSENT = object()


class InputError(ValueError):
    """A config value or input file the user has to change; the message names it and what is allowed."""


USER_ERRORS = (InputError, InvalidRecordError, SandboxUnavailable, UnreadableWeights, ExportError, DiskFull,
               RunDirectoryBusy, TaskDataError, HubUnavailable)


def one_line(main: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Put under @hydra.main: a user error ends the run as `error: <message>` on stderr, exit status 1."""

    @functools.wraps(main)
    def checked(cfg: DictConfig) -> Any:
        try:
            return main(cfg)
        except USER_ERRORS as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    return checked


def check_train(cfg: DictConfig) -> None:
    """python -m l2d.train: numbers, the batch split, the diffusion path's config, and every input path."""
    whole(cfg, "seed")
    whole(cfg, "batch_size", minimum=1)
    whole(cfg, "data.micro_batch_size", minimum=1)
    whole(cfg, "data.max_length", minimum=1)
    whole(cfg, "trainer.max_steps", minimum=-1)
    whole(cfg, "trainer.max_epochs", minimum=-1, optional=True)
    number(cfg, "lr", above=0)
    try:
        accumulation(cfg.batch_size, cfg.data.micro_batch_size, cfg.trainer.devices)
    except ValueError as error:
        raise InputError(str(error)) from None
    allowed_changes(cfg)
    removed_options(cfg)
    if "reinforce" in cfg.method:
        reinforcement(cfg)
        return
    network = cfg.method.network
    if "config" in network:  # L2D: its own checks (sigma, lora_rank, timestep_sampling, ...)
        diffusion_config(network.config)
    else:
        whole(cfg, "method.network.lora_rank", minimum=0)
    lr_multipliers(cfg, l2d="config" in network)
    existing_file(cfg, "ckpt_path", "a .ckpt file of an earlier run, e.g. its checkpoints/last.ckpt", archive=True)
    export_directory(cfg, "finetuned", (FINETUNE_FILE,), "a lora/full run's export/ directory")
    for i, source in enumerate(cfg.data.get("sources") or []):
        for key in ("path", "val_path"):
            if OmegaConf.is_missing(source, key):
                raise InputError(f"data.sources.{i}.{key} is required: give a JSONL file")
            existing_file(cfg, f"data.sources.{i}.{key}", "a JSONL file")
    model_location(cfg, "model.name_or_path")


def allowed_changes(cfg: DictConfig) -> None:
    """allow_change: fields of a resumed run's fingerprint (l2d.lightning.run_guard), so only with ckpt_path."""
    value = OmegaConf.select(cfg, "allow_change", default=None) or []
    names = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InputError(f"allow_change must be a list of the run's fingerprint fields, like [sigma,lora_rank], "
                         f"got {names!r}")
    if names and not cfg.ckpt_path:
        raise InputError(f"allow_change={names} lets a resumed run change its fingerprint: give ckpt_path=<checkpoint> "
                         f"too (a new run has nothing to change)")


def reinforcement(cfg: DictConfig) -> None:
    """An RL stage (method.reinforce): the export it starts from, its numbers and its tasks."""
    l2d = cfg.method.name.startswith("l2d")
    what = "an L2D run's export/ directory" if l2d else "a lora/full run's export/ directory"
    if cfg.init is None:
        raise InputError(f"method={cfg.method.name} trains on from an export: give init=<{what}>")
    export_directory(cfg, "init", (CONFIG_FILE if l2d else FINETUNE_FILE,), what)
    for key, minimum in (("steps", 1), ("prompts_per_step", 1), ("group_size", 2), ("actions_per_token", 1),
                         ("updates", 1), ("max_new_tokens", 1), ("rows_per_pass", 1), ("kl_every", 1)):
        whole(cfg, f"method.reinforce.{key}", minimum=minimum)
    for key in ("temperature", "x1_temperature", "kl"):
        number(cfg, f"method.reinforce.{key}", minimum=0)
    number(cfg, "method.reinforce.clip", above=0)
    partial_credit = OmegaConf.select(cfg, "method.reinforce.partial_credit", default=False)
    if not isinstance(partial_credit, bool):
        raise InputError(f"method.reinforce.partial_credit must be true (the verifier's partial credit as reward) or "
                         f"false (its verdict, 1 or 0), got {partial_credit!r}")
    lr_multipliers(cfg, l2d=l2d)
    for key in ("task", "validation"):  # the reward is the task's verifier: it must be a task l2d can score
        spec = OmegaConf.to_container(OmegaConf.select(cfg, f"method.reinforce.{key}"), resolve=True)
        try:
            get_task(spec["name"], **spec.get("options", {}))
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"method.reinforce.{key}: {error} (the reward is a task's verifier: one of "
                             f"{', '.join(TASKS)}, or reasoning_gym/<dataset>)") from None
    existing_file(cfg, "ckpt_path", "a .ckpt file of an earlier run, e.g. its checkpoints/last.ckpt", archive=True)


def check_evaluate(cfg: DictConfig) -> None:
    """python -m l2d.evaluate: the checkpoint, the decoding, the task's files, and the code sandbox."""
    what = "a training run's export/ directory, or one of its checkpoints/*.ckpt"
    if str(cfg.checkpoint).endswith(".ckpt"):  # a training checkpoint, scored with its run's config
        existing_file(cfg, "checkpoint", what, archive=True)
    else:
        export_directory(cfg, "checkpoint", (CONFIG_FILE, FINETUNE_FILE), what)
    model_location(cfg, "base_model")
    model_location(cfg, "model.name_or_path")
    for key, minimum, optional in (("samples", 1, False), ("batch_size", 1, False), ("max_new_tokens", 1, True),
                                   ("limit", 1, True), ("seed", None, False)):
        whole(cfg, key, minimum=minimum, optional=optional)
    number(cfg, "temperature", minimum=0)
    if cfg.guidance is not None:
        number(cfg, "guidance", minimum=1)
    compile_mode(cfg, "compile")
    device_and_dtype(cfg)
    decode_options(cfg.solver, "solver")
    if cfg.token_search is not None and not isinstance(cfg.token_search, Mapping):
        raise InputError(f"token_search must be null or a mapping like {{hypotheses:15,alpha:1.0}}, "
                         f"got {cfg.token_search!r}")
    whole(cfg, "token_search.hypotheses", minimum=1)
    whole(cfg, "token_search.resample_every", minimum=0)
    for key in ("path", "shots_path"):
        existing_file(cfg, f"task.options.{key}", f"a JSONL file in the {cfg.task.name} dataset's own schema")
    if isinstance(TASKS.get(cfg.task.name), type) and issubclass(TASKS[cfg.task.name], CodeTask):
        require_isolation(bool(OmegaConf.select(cfg, "task.options.allow_weak", default=False)))


def check_bench(cfg: DictConfig) -> None:
    """python -m l2d.bench: device and dtypes, sizes, repeats, the decode settings, the methods and the shapes."""
    device(cfg)
    for i, dtype in enumerate(cfg.dtypes):
        if dtype != "auto" and dtype not in DTYPES:
            raise InputError(f"dtypes.{i} must be auto or one of {sorted(DTYPES)}, got {dtype!r}")
    whole(cfg, "warmup", minimum=0)
    whole(cfg, "repeats", minimum=1)
    whole(cfg, "decode.prompt_tokens", minimum=1)
    whole(cfg, "decode.new_tokens", minimum=1)
    if cfg.decode.batch_sizes != "auto":
        for i, batch in enumerate(cfg.decode.batch_sizes):
            if not _is_whole(batch) or batch < 1:
                raise InputError(f"decode.batch_sizes.{i} must be an integer >= 1, got {batch!r} (or batch_sizes=auto)")
    if cfg.decode.compile != "auto":
        compile_mode(cfg, "decode.compile")
    for i, spec in enumerate(cfg.decode.l2d):
        decode_options(spec, f"decode.l2d.{i}")
    unknown = [m for m in cfg.train.methods if m not in BENCH_METHODS]
    if unknown:
        raise InputError(f"train.methods must be among {list(BENCH_METHODS)}, got {unknown}")
    for i, _ in enumerate(cfg.train.shapes):
        for key in ("batch", "prompt", "answer"):
            whole(cfg, f"train.shapes.{i}.{key}", minimum=1)


def check_inspect(cfg: DictConfig) -> None:
    """python -m l2d.inspect: the prompt to decode (the config leaves it mandatory, ???)."""
    if OmegaConf.is_missing(cfg, "prompt"):
        raise InputError('prompt= is required: the user turn to decode, e.g. prompt="What is 17 + 25?"')


def whole(cfg: DictConfig, key: str, minimum: int | None = None, optional: bool = False) -> None:
    """An integer field (>= minimum; null too when optional). A key this config does not have is skipped."""
    value = OmegaConf.select(cfg, key, default=_ABSENT)
    if value is _ABSENT or (value is None and optional):
        return
    if not _is_whole(value) or (minimum is not None and value < minimum):
        allowed = "an integer" + (f" >= {minimum}" if minimum is not None else "") + (" or null" if optional else "")
        raise InputError(f"{key} must be {allowed}, got {value!r}")


def number(cfg: DictConfig, key: str, above: float | None = None, minimum: float | None = None) -> None:
    value = OmegaConf.select(cfg, key)
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if bad or (above is not None and value <= above) or (minimum is not None and value < minimum):
        bound = f" > {above}" if above is not None else f" >= {minimum}" if minimum is not None else ""
        raise InputError(f"{key} must be a number{bound}, got {value!r}")


def lr_multipliers(cfg: DictConfig, l2d: bool) -> None:
    """module.lr_multipliers, as the training modules take it (l2d.model.groups)."""
    value = OmegaConf.select(cfg, "module.lr_multipliers", default=None)
    try:
        checked_multipliers(OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value,
                            None if l2d else f"method={cfg.method.name}")
    except ValueError as error:
        raise InputError(str(error)) from None


def removed_options(cfg: DictConfig) -> None:
    """A shorthand of a research option since removed (l2d.research.REMOVED): refused with why, unless off."""
    for name, why in REMOVED.items():
        value = OmegaConf.select(cfg, name, default=None)
        if value:
            raise InputError(f"{name}={value}: {why}")


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def diffusion_config(config: DictConfig) -> None:
    """The L2DConfig as it will be built, so its own checks run now (sigma=-1: 'sigma must be > 0')."""
    from l2d.model.config import L2DConfig

    fields = OmegaConf.to_container(config, resolve=True)
    fields.pop("_target_", None)
    numeric = {f.name for f in dataclasses.fields(L2DConfig)
               if isinstance(f.default, (int, float)) and not isinstance(f.default, bool)}
    for key, value in fields.items():  # L2DConfig compares them: a string would end in a TypeError
        if key in numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"{key} must be a number, got {value!r}")
    try:
        L2DConfig(**fields)
    except (TypeError, ValueError) as error:
        raise InputError(str(error)) from None


def decode_options(options: Mapping, where: str) -> None:
    """Solver settings as DecodeOptions will take them (its own checks: solver name, levels, t_final, ...)."""
    from l2d.model.generate import DecodeOptions

    try:
        DecodeOptions(**OmegaConf.to_container(options, resolve=True))
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: {error}") from None


def compile_mode(cfg: DictConfig, key: str) -> None:
    from l2d.model.generate import COMPILE_MODES

    value = OmegaConf.select(cfg, key)
    if value is not None and value not in COMPILE_MODES:
        raise InputError(f"{key} must be null or one of {list(COMPILE_MODES)}, got {value!r}")


def device_and_dtype(cfg: DictConfig) -> None:
    device(cfg)
    dtype = cfg.dtype
    if dtype != "auto" and dtype not in DTYPES:
        raise InputError(f"dtype must be auto or one of {sorted(DTYPES)}, got {dtype!r}")


def device(cfg: DictConfig) -> None:
    import torch

    name = str(cfg.device)
    if not DEVICE.fullmatch(name):
        raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={name} but this machine has no CUDA device (use device=auto or cpu)")


def existing_file(cfg: DictConfig, key: str, what: str, archive: bool = False) -> None:
    """A path field that is null or an existing file (a zip archive when `archive`: torch checkpoints)."""
    value = OmegaConf.select(cfg, key)
    if value is None:
        return
    path = Path(os.path.expanduser(str(value)))
    if not path.is_file():
        raise InputError(f"{key}={value}: {'not a file' if path.exists() else 'no such file'} (give {what})")
    if archive and not zipfile.is_zipfile(path):
        raise InputError(f"{key}={value}: not a checkpoint, or a damaged one (give {what})")


def export_directory(cfg: DictConfig, key: str, markers: Sequence[str], what: str) -> None:
    """A path field that is null or a directory holding one of `markers`, a readable JSON file."""
    value = OmegaConf.select(cfg, key)
    if value is None:
        return
    path = Path(os.path.expanduser(str(value)))
    if not path.is_dir():
        raise InputError(f"{key}={value}: {'not a directory' if path.exists() else 'no such directory'} "
                         f"(give {what})")
    marker = next((path / name for name in markers if (path / name).is_file()), None)
    if marker is None:
        raise InputError(f"{key}={value}: no {' or '.join(markers)} in it (give {what})")
    try:
        json.loads(marker.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"{marker}: damaged, not JSON ({error}); give {what}") from None


def model_location(cfg: DictConfig, key: str) -> None:
    """A base model named by a path (absolute, ./, ../, ~ or .gguf) must exist; other names are
    short names or hub ids, checked when loaded."""
    value = OmegaConf.select(cfg, key)
    if not isinstance(value, str):
        return
    if value.startswith(("/", "./", "../", "~")) or value.endswith(".gguf"):
        if not Path(os.path.expanduser(value)).exists():
            raise InputError(f"{key}={value}: no such file or directory (give a local model directory, a .gguf "
                             "file, a hub id like meta-llama/Llama-3.2-1B-Instruct, or smollm2-135m)")
