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


def named_groups(network, lr_multipliers: dict[str, float]) -> list[dict]:
    """One named optimizer group per trainable part of an L2D path (w_d, conditioning, ...), for
    `scale_learning_rates`; refuses a multiplier that names no group of this path."""
    groups = network.trainable_groups()
    unknown = sorted(set(lr_multipliers) - set(groups))
    if unknown:
        raise ValueError(f"lr_multipliers names {unknown}: not a trainable group of this path; "
                         f"its groups are {sorted(groups)}")
    return [{"params": parameters, "name": name} for name, parameters in groups.items()]


def scale_learning_rates(optimizer, lr_multipliers: dict[str, float]) -> None:
    """Each named group's lr times its multiplier; before any scheduler, which takes each group's lr as its peak."""
    for group in optimizer.param_groups:
        group["lr"] *= lr_multipliers.get(group.get("name"), 1.0)
