"""The paper's baselines in the same harness: plain next-token finetuning, LoRA (peft) or full."""

from __future__ import annotations

import json
from pathlib import Path

from peft import LoraConfig, get_peft_model
from torch import nn

from l2d.model.checkpoint import atomic_directory

METHODS = ("lora", "full")
FINETUNE_FILE = "l2d_finetune.json"  # which method and base an export was made with


class Finetune(nn.Module):
    """Next-token finetuning of the base itself. `lora_rank` > 0: LoRA on every linear layer of the
    decoder (peft); `lora_rank` = 0: every weight trains."""

    def __init__(self, base: nn.Module, lora_rank: int = 4, lora_alpha: float = 64.0,
                 target_modules: str | list[str] = "all-linear"):
        super().__init__()
        if lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0 (0 = full finetuning), got {lora_rank}")
        self.method = "lora" if lora_rank else "full"
        self.base_name = getattr(base.config, "l2d_name_or_path", None) or base.config._name_or_path
        if lora_rank:
            config = LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=target_modules)
            self.model = get_peft_model(base, config)
        else:
            self.model = base.requires_grad_(True)

    def forward(self, input_ids, attention_mask=None, labels=None, class_labels=None):
        """Same call as L2DModel's; class labels have no meaning here and are ignored."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

    def trainable_named_parameters(self):
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for _, p in self.trainable_named_parameters())

    def merged_base(self) -> nn.Module:
        """The finetuned LM as a plain transformers model (LoRA merged into the weights)."""
        return self.model.merge_and_unload() if self.method == "lora" else self.model

    def save_pretrained(self, directory) -> None:
        """LoRA: the peft adapter; full: the whole model (transformers format). Written atomically."""
        info = {"method": self.method, "base_model": self.base_name,
                "trainable_parameters": self.num_trainable_parameters()}

        def write(staging: Path) -> None:
            self.model.save_pretrained(str(staging))
            (staging / FINETUNE_FILE).write_text(json.dumps(info, indent=2) + "\n")

        atomic_directory(Path(directory), write)


def load_finetuned(directory, base: nn.Module) -> nn.Module:
    """A saved baseline as a plain LM: a peft adapter applied to `base` and merged, or a full model."""
    directory = Path(directory)
    if (directory / "adapter_config.json").is_file():
        from peft import PeftModel

        return PeftModel.from_pretrained(base, str(directory)).merge_and_unload().eval()
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(directory), dtype=next(base.parameters()).dtype).eval()
