"""Loggers that never crash a run: W&B goes offline when there is no account or no network."""

from __future__ import annotations

import logging
import netrc
import os

from lightning.pytorch.loggers import WandbLogger

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
