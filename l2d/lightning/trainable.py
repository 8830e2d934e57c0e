"""What every LightningModule of the project shares: checkpoints of what trains only (the trainable parameters, plus
optimizer and loop state, never the frozen base), and the one optimizer builder."""

from __future__ import annotations

from lightning.pytorch import LightningModule

from l2d.lightning.strategies import ShardedDataParallel
from l2d.model.groups import optimizer_groups, scale_learning_rates
from l2d.validation import InputError


class TrainableCheckpoints(LightningModule):
    """Saves only parameters that require grad; refuses, in one message, a checkpoint that lacks some of them.
    Loading is not strict (the frozen base is not in the file); `on_load_checkpoint` of a subclass calls
    `check_trainable` first. Under trainer=fsdp, `configure_model` shards `self.network`. A subclass sets
    `network`, `optimizer_factory`, `scheduler_factory` and `lr_multipliers`, which `configure_optimizers` builds
    from."""

    # Whether the module runs its network through the network's forward (and `losses_at`) only, which a sharded
    # network needs: the gathering of its root unit hangs on them (l2d.lightning.strategies).
    shardable = True

    def __init__(self) -> None:
        super().__init__()
        self.strict_loading = False

    def trainable_keys(self) -> set[str]:
        return {name for name, p in self.named_parameters() if p.requires_grad}

    def configure_model(self) -> None:
        if not isinstance(self.trainer.strategy, ShardedDataParallel):
            return
        if not self.shardable:
            raise InputError(f"trainer=fsdp cannot shard {type(self).__name__}: it calls its network outside the "
                             "network's forward; use trainer=ddp or one device")
        self.trainer.strategy.shard(self.network)

    def configure_optimizers(self):
        """The optimizer over the network's trainable parameters (with `lr_multipliers`, one group per part of the
        path at its multiple of the learning rate), and the scheduler over `total_steps()`, stepped at every step."""
        optimizer = self.optimizer_factory(params=optimizer_groups(self.network, self.lr_multipliers))
        scale_learning_rates(optimizer, self.lr_multipliers)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=self.total_steps())
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def total_steps(self) -> int:
        """The run's optimizer steps, the schedule's length: Lightning's count of stepping batches."""
        return self.trainer.estimated_stepping_batches

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        keep = self.trainable_keys()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        # The names stay when a strategy's loader takes the weights out before on_load_checkpoint (FSDP's does).
        checkpoint["trainable"] = sorted(keep)
        checkpoint["processes"] = self.trainer.world_size  # the data order's split (TrainingModule)

    def check_trainable(self, checkpoint: dict) -> None:
        if "state_dict" in checkpoint:
            saved = set(checkpoint["state_dict"])
        elif "trainable" in checkpoint:
            saved = set(checkpoint["trainable"])
        else:
            raise ValueError("the checkpoint's weights were loaded by the strategy and it does not name them "
                             "(written before l2d recorded them): resume it under trainer=ddp or on one device")
        missing = sorted(self.trainable_keys() - saved)
        if missing:
            raise ValueError(f"the checkpoint lacks {len(missing)} trainable parameters of this run "
                             f"(e.g. {missing[:3]}): it was made with another method, model or start")

