"""Cross-entropy over the vocabulary without vocabulary-sized float32 copies.

`F.cross_entropy(logits.float(), ...)` holds, at its peak, the logits, their float32 copy, the saved float32
log-softmax and its float32 gradient: at Llama's 128k vocabulary and 8k slots that is ~12 GiB. Here the loss
keeps only the logits (the caller holds them anyway) and one log-sum-exp per slot; the forward and backward pass
walk the slots in chunks of at most CHUNK_ELEMENTS float32 values, worked on in place, and the gradient, softmax
minus one-hot scaled by the incoming gradient, is computed in float32 and written once in the logits' dtype.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 2**25  # float32 values per chunk (128 MiB): the loss's only float32 temporary


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Per-slot cross-entropy (..., V), (...) -> (...), computed in float32; 0 where targets == ignore_index."""
    return _CrossEntropy.apply(logits, targets, ignore_index)


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, ignore_index):
        flat, labels = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        keep = labels != ignore_index
        safe = labels.where(keep, 0)
        lse = torch.empty(flat.shape[0], dtype=torch.float32, device=flat.device)
        step = max(1, CHUNK_ELEMENTS // flat.shape[1])  # slots per chunk
        for first in range(0, flat.shape[0], step):
            chunk = flat[first:first + step].to(torch.float32, copy=True)  # the one float32 temporary
            top = chunk.amax(dim=-1, keepdim=True)
            lse[first:first + step] = chunk.sub_(top).exp_().sum(dim=-1).log_().add_(top.squeeze(1))
        losses = (lse - flat.gather(1, safe.unsqueeze(1)).squeeze(1).float()).where(keep, 0.0)
        ctx.save_for_backward(logits, safe, keep, lse)
        return losses.view(targets.shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_losses):
        logits, safe, keep, lse = ctx.saved_tensors
        flat = logits.reshape(-1, logits.shape[-1])
        scale = grad_losses.reshape(-1).float().where(keep, 0.0)
        grad = torch.empty_like(flat)
        step = max(1, CHUNK_ELEMENTS // flat.shape[1])  # slots per chunk
        for first in range(0, flat.shape[0], step):
            rows = slice(first, first + step)
            chunk = flat[rows].to(torch.float32, copy=True).sub_(lse[rows].unsqueeze(1)).exp_()  # softmax
            chunk.scatter_add_(1, safe[rows].unsqueeze(1), torch.full_like(chunk[:, :1], -1.0))  # minus one-hot
            grad[rows] = chunk.mul_(scale[rows].unsqueeze(1))
        return grad.view(logits.shape), None, None
