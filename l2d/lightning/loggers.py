"""Loggers: W&B goes offline when there is no account or no network; metrics.csv is continued, not
deleted, by a resumed run."""

from __future__ import annotations

import csv
import logging
import netrc
import os
import shutil
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from l2d.files import write_atomically
from l2d.network import reachable

log = logging.getLogger(__name__)


def wandb_can_sync(timeout: float = 3.0) -> bool:
    """A W&B key (environment or ~/.netrc) and a reachable server."""
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    if not has_key:
        try:
            has_key = netrc.netrc().authenticators("api.wandb.ai") is not None
        except (FileNotFoundError, netrc.NetrcParseError):
            has_key = False
    return has_key and reachable("api.wandb.ai", timeout=timeout)


class ExportingWandbLogger(WandbLogger):
    """Lightning's WandbLogger that knows whether to upload export/ as a model artifact (l2d.tracking
    does it once the export is written; Lightning's own checkpoint upload stays off: checkpoints
    carry optimizer state and evaluation reads export/)."""

    def __init__(self, upload_export: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.upload_export = upload_export


def wandb_logger(offline: bool | None = None, log_model: bool = True, **kwargs) -> ExportingWandbLogger:
    """lightning's WandbLogger; `offline=None` decides from the key and the network.
    Offline runs are kept under the save dir; `wandb sync` uploads them later.
    `log_model`: an online run uploads export/ as a model artifact (an offline run never does)."""
    if offline is None:
        offline = not wandb_can_sync()
        if offline:
            log.warning("W&B: no API key or no network, logging offline (upload later with `wandb sync`)")
    if offline:
        os.environ.setdefault("WANDB_MODE", "offline")
    return ExportingWandbLogger(upload_export=bool(log_model) and not offline, offline=offline, **kwargs)


def read_record(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the whole rows of a metrics.csv; a last row cut short by a kill is left out."""
    with path.open(newline="") as handle:
        text = handle.read()
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    reader = csv.DictReader(text.splitlines(keepends=True))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def write_record(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    def write(temporary: Path) -> None:
        if path.is_file():
            shutil.copymode(path, temporary)  # the temporary file is private to this user; the record was not
        with temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


class RecordWriter(ExperimentWriter):
    """Lightning's metrics.csv writer, except that an existing file is continued from `resume_step` (the
    checkpoint's step): rows logged before it stay, rows at or after it were logged after that checkpoint by
    the interrupted run and are logged again by the resumed one, so they go. The file is only ever replaced
    whole (a kill while Lightning rewrote it for a new column would lose the record)."""

    def __init__(self, log_dir: str, resume_step: int | None = None) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        # Lightning warns whenever the directory is not empty, which a run directory never is (Hydra's files).
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        if self.resume_step is None:  # l2d.train refuses to train afresh here, so: an evaluation run again
            log.warning("%s: replacing the metrics of an earlier run in this directory", path)
            path.unlink()
            return
        fields, rows = read_record(path)
        write_record(path, fields, [row for row in rows if int(row["step"]) < self.resume_step])
        self.metrics_keys = fields

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        path = Path(self.metrics_file_path)
        write_record(path, fieldnames, read_record(path)[1])


class RunCSVLogger(CSVLogger):
    """Lightning's CSVLogger with RecordWriter: a resumed run (`resume_at`, l2d.train) continues the
    metrics.csv of its run directory, so that the file holds the whole run, each step once."""

    resume_step: int | None = None

    def resume_at(self, step: int) -> None:
        """Continue metrics.csv at `step`, the global step of the checkpoint the run resumes from."""
        if self._experiment is not None:
            raise RuntimeError("resume_at must come before anything is logged")
        self.resume_step = step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = RecordWriter(self.log_dir, self.resume_step)
        return self._experiment
