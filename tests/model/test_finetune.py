"""The LoRA/full baseline computes transformers' own loss while projecting only supervised positions."""

import pytest
import torch

from l2d.model.finetune import Finetune
from tests.tiny import tiny_base


@pytest.mark.parametrize("lora_rank", [4, 0])
def test_loss_and_gradients_match_transformers_forward(lora_rank):
    ids = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding in one row
    labels = ids.clone()
    labels[:, :7] = -100  # a prompt, then supervised answer tokens
    labels[1, 10:] = -100  # a shorter answer
    model = Finetune(tiny_base(), lora_rank=lora_rank).train()
    if lora_rank:  # LoRA B starts at zero, which would make every LoRA A gradient zero
        for name, parameter in model.trainable_named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.1)

    out = model(ids, mask, labels=labels)
    assert out.logits.shape == ((labels[:, 1:] != -100).sum(), 256)
    out.loss.backward()
    ours = {name: p.grad.clone() for name, p in model.trainable_named_parameters()}
    model.zero_grad()
    lm = model.model.get_base_model() if lora_rank else model.model
    reference = lm(input_ids=ids, attention_mask=mask, labels=labels).loss
    reference.backward()

    torch.testing.assert_close(out.loss, reference)
    assert any(g.abs().sum() > 0 for g in ours.values())
    for name, p in model.trainable_named_parameters():
        torch.testing.assert_close(ours[name], p.grad, msg=name)


def test_without_labels_every_position_has_logits():
    ids = torch.randint(0, 256, (2, 9))
    out = Finetune(tiny_base(), lora_rank=4)(ids)
    assert out.logits.shape == (2, 9, 256) and out.loss is None
