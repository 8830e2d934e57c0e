"""Checkpoints of what trains only: the trainable parameters (plus optimizer and loop state), never the frozen
base, for every LightningModule of the project."""

from __future__ import annotations

from lightning.pytorch import LightningModule


class TrainableCheckpoints(LightningModule):
    """Saves only parameters that require grad; refuses, in one message, a checkpoint that lacks some of them.
    Loading is not strict (the frozen base is not in the file); `on_load_checkpoint` of a subclass calls
    `check_trainable` first."""

    def __init__(self) -> None:
        super().__init__()
        self.strict_loading = False

    def trainable_keys(self) -> set[str]:
        return {name for name, p in self.named_parameters() if p.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        keep = self.trainable_keys()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}

    def check_trainable(self, checkpoint: dict) -> None:
        missing = sorted(self.trainable_keys() - set(checkpoint["state_dict"]))
        if missing:
            raise ValueError(f"the checkpoint lacks {len(missing)} trainable parameters of this run "
                             f"(e.g. {missing[:3]}): it was made with another method, model or start")
