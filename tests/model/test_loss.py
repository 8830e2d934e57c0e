"""The training loss: cross-entropy over the vocabulary without float32 copies of the logits, chunked over slots."""

import pytest
import torch
import torch.nn.functional as F

from l2d import L2DConfig, L2DModel
from l2d.data.chat import next_token_labels
from l2d.model import loss as loss_module
from l2d.model.loss import cross_entropy
from tests.tiny import tiny_base


def logits_and_targets(dtype, slots=(3, 7), vocabulary=50):
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(*slots, vocabulary, generator=generator) * 4).to(dtype).requires_grad_()
    targets = torch.randint(0, vocabulary, slots, generator=generator)
    targets[0, :3] = -100
    targets[2, 5] = -100
    return logits, targets


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("chunk", [2**26, 50 * 4])  # one chunk; chunks of 4 slots (the last one short)
def test_loss_and_gradients_equal_float32_cross_entropy(monkeypatch, dtype, tolerance, chunk):
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", chunk)
    logits, targets = logits_and_targets(dtype)
    weights = torch.rand(targets.shape, generator=torch.Generator().manual_seed(1))  # a gradient per slot
    ours = cross_entropy(logits, targets)
    (ours * weights).sum().backward()
    grad, logits.grad = logits.grad, None
    reference = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none").view_as(targets)
    (reference * weights).sum().backward()
    assert ours.dtype == torch.float32 and torch.equal(ours[targets == -100], torch.zeros(4))
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)
    assert grad.dtype == dtype
    torch.testing.assert_close(grad.float(), logits.grad.float(), rtol=tolerance, atol=tolerance)


def test_the_loss_keeps_no_vocabulary_sized_tensor_but_the_logits():
    logits, targets = logits_and_targets(torch.bfloat16, slots=(4, 64), vocabulary=512)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        cross_entropy(logits, targets)
    large = [t for t in saved if t.numel() >= logits.numel()]
    assert len(large) == 1 and large[0].data_ptr() == logits.data_ptr()
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
    assert any(t.numel() >= logits.numel() and t.dtype == torch.float32 for t in saved)  # what it replaced


def test_model_loss_and_gradients_match_float32_cross_entropy_of_its_logits():
    model = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4)).train()
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(3))
    labels = ids.clone()
    labels[:, :5] = -100
    parameters = [p for _, p in model.trainable_named_parameters()]

    def gradients(loss):
        model.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in parameters]

    out = model(ids, labels=labels, generator=torch.Generator().manual_seed(4))
    ours = gradients(out.loss)
    again = model(ids, labels=labels, generator=torch.Generator().manual_seed(4))
    targets = next_token_labels(labels).gather(1, again.positions)
    summed = F.cross_entropy(again.logits.float().flatten(0, 1), targets.flatten(), reduction="sum")
    reference = summed / again.valid.sum()
    torch.testing.assert_close(out.loss, reference, rtol=1e-6, atol=1e-6)
    for mine, theirs in zip(ours, gradients(reference), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)  # float32 sums in another order
