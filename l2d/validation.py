"""Bad input is refused before any work, in one line that names the field or file and what is allowed.

Each entry point checks its composed config first (`check_train`, `check_evaluate`, `check_bench`,
`check_inspect`), before a model, a dataset or a checkpoint is loaded. What a setting may be is its schema's to
say (l2d.schema's dataclasses, L2DConfig, Solver, l2d.rl.settings: types, bounds, choices, each in its
`__post_init__`); `checked` builds one from the config and turns its ValueError into the user's line. What a schema
cannot say is said here: that the files and exports named exist and read, that the machine has the device asked
for, how the groups fit together (the batch split, lr_multipliers for the method, the early fields of the
`_target_` groups data and trainer, which their classes check only once the model has loaded).
`one_line` wraps a Hydra entry point so that such an error, or a bad record, a missing sandbox or an unreadable
weight file found later, ends the program with that line (exit status 1) instead of a traceback;
HYDRA_FULL_ERROR=1 shows the traceback as well.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from l2d.checks import device, dtype, is_whole, one_of, part, whole
from l2d.config import accumulation
from l2d.data.hub import HubUnavailable
from l2d.data.invalid import InvalidRecordError
from l2d.files import DiskFull
from l2d.model.checkpoint import CONFIG_FILE
from l2d.model.config import L2DConfig
from l2d.model.digest import ExportError
from l2d.model.finetune import FINETUNE_FILE
from l2d.model.generate import COMPILE_MODES, DecodeOptions
from l2d.model.groups import checked_multipliers
from l2d.model.weights import UnreadableWeights
from l2d.rl.settings import Reinforce
from l2d.run_lock import RunDirectoryBusy
from l2d.schema import Evaluate, Inspect, Train
from l2d.tasks.code import CodeTask
from l2d.tasks.registry import TASKS
from l2d.tasks.sandbox import SandboxUnavailable, require_isolation
from l2d.tasks.sources import TaskDataError

BENCH_METHODS = ("l2d_lora", "l2d_full", "lora", "full")
_ABSENT = object()


class InputError(ValueError):
    """A config value or input file the user has to change; the message names it and what is allowed."""


USER_ERRORS = (InputError, InvalidRecordError, SandboxUnavailable, UnreadableWeights, ExportError, DiskFull,
               RunDirectoryBusy, TaskDataError, HubUnavailable)


def one_line(main: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Put under @hydra.main: a user error ends the run as `error: <message>` on stderr, exit status 1."""

    @functools.wraps(main)
    def guarded(cfg: DictConfig) -> Any:
        try:
            return main(cfg)
        except USER_ERRORS as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    return guarded


def checked(schema: type, cfg: DictConfig, where: str = "") -> Any:
    """The dataclass `schema` built from its fields in `cfg` (each resolved; ??? passed on as such, so that the
    schema can say what is required), its own checks run; their first failure as one line, prefixed by `where`."""
    values = {}
    for name in (f.name for f in dataclasses.fields(schema)):
        if name not in cfg:
            continue
        value = MISSING if OmegaConf.is_missing(cfg, name) else OmegaConf.select(cfg, name)
        values[name] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    try:
        return schema(**values)
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}{error}") from None


def check_train(cfg: DictConfig) -> None:
    """python -m l2d.train: its settings, the batch split, the method's objects, and every input path."""
    checked(Train, cfg)
    for key, minimum in (("data.micro_batch_size", 1), ("data.max_length", 1), ("trainer.max_steps", -1)):
        group_field(cfg, key, minimum)
    group_field(cfg, "trainer.max_epochs", -1, optional=True)
    try:
        accumulation(cfg.batch_size, cfg.data.micro_batch_size, cfg.trainer.devices)
    except ValueError as error:
        raise InputError(str(error)) from None
    if "reinforce" in cfg.method:
        reinforcement(cfg)
        return
    network = cfg.method.network
    if "config" in network:  # L2D: its own checks (sigma, lora_rank, timestep_sampling, ...)
        checked(L2DConfig, network.config)
    else:
        group_field(cfg, "method.network.lora_rank", 0)
    lr_multipliers(cfg, l2d="config" in network)
    existing_file(cfg, "ckpt_path", "a .ckpt file of an earlier run, e.g. its checkpoints/last.ckpt", archive=True)
    export_directory(cfg, "finetuned", (FINETUNE_FILE,), "a lora/full run's export/ directory")
    for i, source in enumerate(cfg.data.get("sources") or []):
        for key in ("path", "val_path"):
            if OmegaConf.is_missing(source, key):
                raise InputError(f"data.sources.{i}.{key} is required: give a JSONL file")
            existing_file(cfg, f"data.sources.{i}.{key}", "a JSONL file")
    model_location(cfg, "model.name_or_path")


def group_field(cfg: DictConfig, key: str, minimum: int, optional: bool = False) -> None:
    """An integer field of a `_target_` group (data, trainer, method.network), read before its object exists."""
    value = OmegaConf.select(cfg, key, default=_ABSENT)
    if value is not _ABSENT:
        at(whole, value, key, minimum=minimum, optional=optional)


def at(check: Callable, *args, **kwargs) -> None:
    """A check of l2d.checks, its ValueError as an InputError."""
    try:
        check(*args, **kwargs)
    except ValueError as error:
        raise InputError(str(error)) from None


def reinforcement(cfg: DictConfig) -> None:
    """An RL stage (method.reinforce): the export it starts from, its settings and its tasks."""
    l2d = cfg.method.name.startswith("l2d")
    what = "an L2D run's export/ directory" if l2d else "a lora/full run's export/ directory"
    if cfg.init is None:
        raise InputError(f"method={cfg.method.name} trains on from an export: give init=<{what}>")
    export_directory(cfg, "init", (CONFIG_FILE if l2d else FINETUNE_FILE,), what)
    stage = checked(Reinforce, cfg.method.reinforce, "method.reinforce.")
    lr_multipliers(cfg, l2d=l2d)
    try:
        stage.tasks()  # the reward is the task's verifier: it must be a task l2d can score
    except ValueError as error:
        raise InputError(f"method.reinforce.{error}") from None
    existing_file(cfg, "ckpt_path", "a .ckpt file of an earlier run, e.g. its checkpoints/last.ckpt", archive=True)


def check_evaluate(cfg: DictConfig) -> None:
    """python -m l2d.evaluate: its settings, the checkpoint, the device, the task's files and the code sandbox."""
    settings = checked(Evaluate, cfg)
    what = "a training run's export/ directory, or one of its checkpoints/*.ckpt"
    if str(cfg.checkpoint).endswith(".ckpt"):  # a training checkpoint, scored with its run's config
        existing_file(cfg, "checkpoint", what, archive=True)
    else:
        export_directory(cfg, "checkpoint", (CONFIG_FILE, FINETUNE_FILE), what)
    model_location(cfg, "base_model")
    model_location(cfg, "model.name_or_path")
    available(settings.device)
    for key in ("path", "shots_path"):
        existing_file(cfg, f"task.options.{key}", f"a JSONL file in the {cfg.task.name} dataset's own schema")
    if isinstance(TASKS.get(cfg.task.name), type) and issubclass(TASKS[cfg.task.name], CodeTask):
        require_isolation(settings.sandbox.allow_weak)


def check_bench(cfg: DictConfig) -> None:
    """python -m l2d.bench: device and dtypes, sizes, repeats, the decode settings, the methods and the shapes."""
    at(device, cfg.device)
    available(cfg.device)
    for i, name in enumerate(cfg.dtypes):
        at(dtype, name, f"dtypes.{i}")
    for key, minimum in (("warmup", 0), ("repeats", 1), ("decode.prompt_tokens", 1), ("decode.new_tokens", 1)):
        at(whole, OmegaConf.select(cfg, key), key, minimum=minimum)
    if cfg.decode.batch_sizes != "auto":
        for i, batch in enumerate(cfg.decode.batch_sizes):
            if not is_whole(batch) or batch < 1:
                raise InputError(f"decode.batch_sizes.{i} must be an integer >= 1, got {batch!r} (or batch_sizes=auto)")
    if cfg.decode.compile != "auto":
        at(one_of, cfg.decode.compile, "decode.compile", COMPILE_MODES, optional=True)
    for i, spec in enumerate(cfg.decode.l2d):
        at(part, DecodeOptions, OmegaConf.to_container(spec, resolve=True), f"decode.l2d.{i}")
    unknown = [m for m in cfg.train.methods if m not in BENCH_METHODS]
    if unknown:
        raise InputError(f"train.methods must be among {list(BENCH_METHODS)}, got {unknown}")
    for i, shape in enumerate(cfg.train.shapes):
        for key in ("batch", "prompt", "answer"):
            at(whole, shape[key], f"train.shapes.{i}.{key}", minimum=1)


def check_inspect(cfg: DictConfig) -> None:
    """python -m l2d.inspect: its settings (the prompt is required) and the device."""
    available(checked(Inspect, cfg).device)


def lr_multipliers(cfg: DictConfig, l2d: bool) -> None:
    """module.lr_multipliers, as the training modules take it (l2d.model.groups)."""
    value = OmegaConf.select(cfg, "module.lr_multipliers", default=None)
    at(checked_multipliers, OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value,
       None if l2d else f"method={cfg.method.name}")


def available(name: str) -> None:
    """A CUDA device only on a machine that has one (the schema checked the name)."""
    import torch

    if str(name).startswith("cuda") and not torch.cuda.is_available():
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
