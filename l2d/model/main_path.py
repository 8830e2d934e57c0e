"""CausalLM: the frozen LM as the main path. It runs once per token, fills the KV cache, and
hands the diffusion path its keys, values and final hidden state. On its own it decodes as the
plain LM (the base model, or a finetuned baseline, in the same decoding loop as L2D).
"""

from __future__ import annotations

import torch
from torch import nn

from l2d.model.diffusion_path import MainPathContext
from l2d.model.family import cache_keyword, family_of, get, layer_kv, rotary_cos_sin
from l2d.model.generate import generate


class CausalLM(nn.Module):
    """`freeze`: the main path of L2D never trains; a plain LM trained as a policy over tokens (RL on a LoRA
    model, l2d.rl.policy) decodes through the same loop with its adapters left trainable."""

    def __init__(self, base: nn.Module, freeze: bool = True):
        super().__init__()
        self.family = family_of(base)
        self.base = (base.requires_grad_(False) if freeze else base).eval()
        self.cache_keyword = cache_keyword(get(base, self.family.decoder))

    num_classes = 0  # guidance classes; the plain LM has none
    default_levels = 1  # the plain LM is one diffusion level: its own logits

    def train(self, mode: bool = True):
        super().train(mode)
        self.base.eval()  # frozen: always in inference mode
        return self

    @property
    def device(self) -> torch.device:
        return get(self.base, self.family.embed_tokens).weight.device

    def run_main_path(self, input_ids, attention_mask, position_ids, cache) -> torch.Tensor:
        """Run the frozen LM, filling `cache`; returns its pre-norm final hidden states (B, T, d)."""
        captured = []
        hook = get(self.base, self.family.final_norm).register_forward_pre_hook(
            lambda module, args: captured.append(args[0]))
        try:
            get(self.base, self.family.decoder)(input_ids=input_ids, attention_mask=attention_mask,
                                                position_ids=position_ids, use_cache=True,
                                                **{self.cache_keyword: cache})
        finally:
            hook.remove()
        return captured[-1]

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The LM's own head: final norm, then the vocabulary projection."""
        return get(self.base, self.family.lm_head)(get(self.base, self.family.final_norm)(hidden))

    def context(self, cache, num_layers: int, hidden, query_tokens, query_index, query_position,
                key_mask) -> MainPathContext:
        """Context for Q query slots: query_tokens (B, Q) each slot's own input token, query_index (B, Q)
        its cache index, query_position (B, Q) its RoPE position, key_mask (B, T) which cached keys are real."""
        keys, values = zip(*(layer_kv(cache, layer) for layer in range(num_layers)), strict=True)
        token_embeddings = get(self.base, self.family.embed_tokens)(query_tokens)
        cos, sin = rotary_cos_sin(get(self.base, self.family.rotary), hidden, query_position)
        key_index = torch.arange(key_mask.shape[1], device=key_mask.device)
        own = key_index == query_index.unsqueeze(-1)  # (B, Q, T); keeps padding slots finite
        mask = (key_index <= query_index.unsqueeze(-1)) & (key_mask.bool().unsqueeze(1) | own)
        return MainPathContext(list(keys), list(values), hidden, token_embeddings, cos, sin, mask.unsqueeze(1))

    def check_class_labels(self, class_labels, batch: int) -> torch.Tensor | None:
        if class_labels is None:
            return None
        if self.num_classes == 0:
            raise ValueError("class_labels were given but the model has no guidance classes "
                             "(L2DConfig.num_classes = 0)")
        class_labels = torch.as_tensor(class_labels, device=self.device).long().reshape(-1)
        if class_labels.numel() != batch:
            raise ValueError(f"class_labels must hold one class per sequence ({batch}), got {class_labels.numel()}")
        if class_labels.min() < 0 or class_labels.max() > self.num_classes:
            raise ValueError(f"class_labels must be in 0..{self.num_classes} (0 = null class), "
                             f"got {class_labels.tolist()}")
        return class_labels

    @staticmethod
    def check_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if input_ids.dim() != 2 or input_ids.shape[1] == 0:
            raise ValueError(f"input_ids must be (batch, length) with length >= 1, got shape {tuple(input_ids.shape)}")
        if attention_mask is None:
            return torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} must equal input_ids shape "
                             f"{tuple(input_ids.shape)}")
        if not attention_mask.bool().any(dim=1).all():
            raise ValueError("attention_mask has a row with no real token (empty prompt)")
        return attention_mask

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, **kwargs):
        """Batched decoding with the KV cache; see `l2d.model.generate.generate` for the options."""
        return generate(self, input_ids, attention_mask, **kwargs)
