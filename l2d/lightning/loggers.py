"""Loggers that never crash a run: W&B goes offline when there is no account or no network."""

from __future__ import annotations

import logging
import netrc
import os

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


def wandb_logger(offline: bool | None = None, **kwargs):
    """lightning's WandbLogger; `offline=None` decides from the key and the network.
    Offline runs are kept under the save dir; `wandb sync` uploads them later."""
    from lightning.pytorch.loggers import WandbLogger

    if offline is None:
        offline = not wandb_can_sync()
        if offline:
            log.warning("W&B: no API key or no network, logging offline (upload later with `wandb sync`)")
    if offline:
        os.environ.setdefault("WANDB_MODE", "offline")
    return WandbLogger(offline=offline, **kwargs)
