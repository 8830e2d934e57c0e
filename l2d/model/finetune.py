"""The paper's baselines in the same harness: plain next-token finetuning, LoRA (peft) or full."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

from l2d.data.chat import IGNORE_INDEX, next_token_labels
from l2d.files import atomic_directory
from l2d.model.card import TrainingRecord, card_and_record, finetune_card
from l2d.model.digest import DIGEST_FILE, DIGEST_VERSION, verify_export, write_digest, written_with_digest
from l2d.model.family import family_of, get
from l2d.model.origin import origin_of, set_origin
from l2d.model.weights import check_weights

# peft (0.21) still reads `model.is_gradient_checkpointing`, which transformers (5.24) has deprecated: theirs to
# change, and nothing a user of a LoRA run can act on.
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

METHODS = ("lora", "full")
FINETUNE_FILE = "l2d_finetune.json"  # which method and base an export was made with
VERSION = DIGEST_VERSION  # written with a digest (l2d.model.digest), which loading then requires; before, none


class Finetune(nn.Module):
    """Next-token finetuning of the base itself. `lora_rank` > 0: LoRA on every linear layer of the
    decoder (peft); `lora_rank` = 0: every weight trains. `init`: a lora/full export to go on training
    (its adapter, or its weights) instead of a fresh start; the rank is then the export's."""

    def __init__(self, base: nn.Module, lora_rank: int = 4, lora_alpha: float = 64.0,
                 target_modules: str | list[str] = "all-linear", init: str | Path | None = None):
        super().__init__()
        if lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0 (0 = full finetuning), got {lora_rank}")
        self.family = family_of(base)  # where the decoder and the LM head live
        origin = origin_of(base)
        self.base_name, self.finetuned = origin.name, origin.finetuned  # finetuned: it continues a finetuned model
        self.reinforced: dict | None = None  # set by RL (l2d.rl), recorded in the export
        if init is not None:
            self.model, lora_rank = trainable_export(base, Path(init))
        elif lora_rank:
            config = LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=target_modules)
            self.model = get_peft_model(base, config)
        else:
            self.model = base.requires_grad_(True)
        self.method = "lora" if lora_rank else "full"
        self.lora_rank = lora_rank

    def forward(self, input_ids, attention_mask=None, labels=None, class_labels=None):
        """Same call as L2DModel's; class labels have no meaning here and are ignored.

        With labels, the loss is transformers' (mean next-token cross-entropy over supervised positions), but
        the LM head runs only where a label is supervised: `logits` is (N supervised, V). Projecting every
        position onto the vocabulary would cost a fifth of a small model's work, to be thrown away."""
        lm = self.model.get_base_model() if self.method == "lora" else self.model
        if labels is None:
            return lm(input_ids=input_ids, attention_mask=attention_mask)
        hidden = get(lm, self.family.decoder)(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        next_tokens = next_token_labels(labels)
        supervised = next_tokens != IGNORE_INDEX
        logits = get(lm, self.family.lm_head)(hidden[supervised])
        return CausalLMOutput(loss=F.cross_entropy(logits.float(), next_tokens[supervised]), logits=logits)

    def trainable_named_parameters(self):
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for _, p in self.trainable_named_parameters())

    def merged_base(self) -> nn.Module:
        """The finetuned LM as a plain transformers model (LoRA merged into the weights)."""
        return self.model.merge_and_unload() if self.method == "lora" else self.model

    def save_pretrained(self, directory, training: TrainingRecord | None = None) -> None:
        """LoRA: the peft adapter; full: the whole model (transformers format); with the record of the
        method and base, a model card (README.md; `training`: what the run did) and, last, the digest of them
        all. Written atomically."""
        info = {"method": self.method, "version": VERSION, "base_model": self.base_name,
                "trainable_parameters": self.num_trainable_parameters()}
        if self.finetuned:
            info["finetuned"] = self.finetuned
        if self.reinforced:
            info["reinforced"] = self.reinforced
        if training is not None and training.run:
            info["run"] = training.run
        card = finetune_card(self.method, self.base_name, self.lora_rank, info["trainable_parameters"],
                             self.finetuned, training, self.reinforced)
        weights = "adapter_model.safetensors" if self.method == "lora" else "model.safetensors"
        writers = [(weights, lambda staging: self.model.save_pretrained(str(staging))),
                   (FINETUNE_FILE, lambda staging: (staging / FINETUNE_FILE).write_text(json.dumps(info, indent=2)
                                                                                       + "\n"))]
        # the card replaces peft's template card; the digest comes last
        atomic_directory(Path(directory), [*writers, *card_and_record(card, training), (DIGEST_FILE, write_digest)])


def read_finetune_info(directory) -> dict:
    """The record of a lora/full export (method, base model), checked against its digest, with a clear error
    when it is not one."""
    path = Path(directory) / FINETUNE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a lora/full export of `python -m l2d.train` (no {FINETUNE_FILE})")
    info = json.loads(path.read_text())
    verify_export(directory, has_digest=written_with_digest(info), only=FINETUNE_FILE)
    return info


def verify_finetune_export(directory: Path) -> None:
    """Every file of a lora/full export as it was written (its digest), then every weight file readable."""
    verify_export(directory, has_digest=written_with_digest(read_finetune_info(directory)))
    check_weights(directory)


def weights_fingerprint(directory) -> str:
    """sha256 over an export's weight files, so a chain built on it notices when it changes."""
    files = sorted(Path(directory).glob("*.safetensors")) + sorted(Path(directory).glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"{directory} holds no weight files (*.safetensors)")
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def trainable_export(base: nn.Module, directory: Path) -> tuple[nn.Module, int]:
    """(model, LoRA rank) of a lora/full export made on `base`, to train on: its peft adapter left trainable
    on `base` (rank > 0), or its full weights (rank 0)."""
    info = read_finetune_info(directory)
    name, finetuned = origin_of(base).name, origin_of(base).finetuned
    if info.get("base_model") != name or info.get("finetuned") != finetuned:
        raise ValueError(f"{directory} was trained on {info.get('base_model')!r}"
                         f"{' finetuned from ' + info['finetuned']['path'] if info.get('finetuned') else ''}; "
                         f"the base given is {name!r}")
    verify_finetune_export(directory)
    if (directory / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(base, str(directory), is_trainable=True)
        return model, int(model.peft_config["default"].r)
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(directory), dtype=next(base.parameters()).dtype), 0


def load_finetuned(directory, base: nn.Module) -> nn.Module:
    """A saved baseline as a plain LM: a peft adapter applied to `base` and merged, or a full model."""
    directory = Path(directory)
    verify_finetune_export(directory)
    if (directory / "adapter_config.json").is_file():
        from peft import PeftModel

        return PeftModel.from_pretrained(base, str(directory)).merge_and_unload().eval()
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(directory), dtype=next(base.parameters()).dtype).eval()


def finetuned_base(base: nn.Module, directory, expected: dict | None = None) -> nn.Module:
    """`base` with a lora/full export applied: the frozen LM for L2D trained on a finetuned model
    (the paper's "L2D from LoRA ft."). The chain is the model's origin (l2d.model.origin), which an export made on
    it records, so that it can be rebuilt, and refused when its parts no longer match.

    expected: the chain an L2D checkpoint recorded ({"path", "method", "base_model", "sha256"}).
    """
    directory = Path(directory).resolve()
    info = read_finetune_info(directory)
    if info.get("finetuned"):  # itself trained on a finetuned model: apply that first
        base = finetuned_base(base, info["finetuned"]["path"], expected=info["finetuned"])
    name = origin_of(base).name
    if info.get("base_model") != name:
        raise ValueError(f"model.finetuned={directory} was trained on base {info.get('base_model')!r}, "
                         f"but the base model given is {name!r}; set model.name_or_path to its base")
    chain = {"path": str(directory), "method": info["method"], "base_model": name,
             "sha256": weights_fingerprint(directory)}
    if expected is not None and expected["sha256"] != chain["sha256"]:
        raise ValueError(f"the finetuned model {directory} differs from the one this L2D checkpoint was trained on "
                         f"(weights sha256 {chain['sha256'][:12]}..., recorded {expected['sha256'][:12]}...); "
                         f"retrain the L2D path or restore that export")
    return set_origin(load_finetuned(directory, base), name, chain)
