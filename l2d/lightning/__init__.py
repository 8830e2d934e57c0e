"""Lightning glue: the training module, data module, callbacks, loggers and LR schedule.

Importing it silences six messages of Lightning's that say nothing a user of this project can act on.
"""

import logging
import warnings

# Lightning warns about any module in eval mode when training starts; the frozen base is, on purpose
# (TrainingModule.on_fit_start), and everything that trains is in training mode.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")
# l2d.train refuses to train afresh into a directory that holds checkpoints: this is a run resuming in its own.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
# L2DDataModule resumes mid-epoch itself (skip_batches): a resumed run sees the uninterrupted run's batches.
warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended")
# Lightning's own data-loader code builds torch's deprecated LeafSpec; it is Lightning's to change.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
# The model summary cannot size bf16-mixed weights (the default precision on CPUs with bfloat16 matrix units) and
# says it counts them at 32 bits; the parameter counts it prints are right.
warnings.filterwarnings("ignore", message=r"Precision bf16-mixed is not supported by the model summary")


class _NoTips(logging.Filter):
    """Every Trainer advertises Lightning's cloud services ("💡 Tip: ... litlogger")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip:")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoTips())
