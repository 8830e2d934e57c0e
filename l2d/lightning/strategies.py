"""trainer=fsdp: fully sharded data parallel (torch's FSDP2) in units that respect the diffusion path's shared LM
modules.

Diffusion block l calls decoder layer l's own q_proj, o_proj, MLP and norms. A sharding unit gathers its weights
only while one of its own modules runs, so a unit holding decoder layer l alone (FSDP1's per-layer wrapping) leaves
block l reading shards, and one unit for the whole model gathers all of it for every forward: nothing is sharded in
compute. Here decoder layer l and diffusion block l are one unit (FSDP2 groups several modules): it is gathered
whenever either runs (the main path's pass, the diffusion pass, their backward) and sharded again after. The rest
(embeddings, final norm, LM head; the path's vocabulary, translation, conditioning and w_d) is the root unit,
gathered around the network's forward and `losses_at`. A finetuned baseline is sharded per decoder layer.

Precision: no FSDP mixed-precision policy. Weights, gradients and buffers stay float32 (the frozen LM's RoPE
`inv_freq` included) and bf16-mixed autocasts the compute as under DDP: a gathered weight is the float32 weight
itself, so the main path is the base computed as DDP computes it. (An FSDP param_dtype of bf16 would run the LM's
residual stream in bf16, and Lightning's FSDPStrategy also casts buffers: RoPE's angles off by radians at long
positions.) The price: gathers move float32, twice the bytes of bf16.

Checkpoints hold the trainable parameters only, gathered whole on rank 0 into one file, as under DDP.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import FSDPModule, fully_shard, register_fsdp_forward_method
from torch.distributed.tensor import DTensor

from l2d.export import is_l2d
from l2d.model.family import get


class ShardedDataParallel(ModelParallelStrategy):
    """FSDP2 over every process (data parallel only, no tensor parallelism), on GPUs, or on CPUs with gloo (tests).
    The LightningModule calls `shard(network)` from its `configure_model` (TrainableCheckpoints)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(save_distributed_checkpoint=False, **kwargs)

    def setup_environment(self) -> None:
        self._data_parallel_size, self._tensor_parallel_size = self.num_nodes * self.num_processes, 1
        super().setup_environment()

    def shard(self, network: nn.Module) -> None:
        if not isinstance(network, FSDPModule):  # configure_model runs again for a later fit or validate
            shard_network(network, self.device_mesh["data_parallel"])

    def lightning_module_state_dict(self) -> dict:
        # Rank 0 gathers what a checkpoint keeps (TrainableCheckpoints), not the frozen base as well.
        options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
        return get_model_state_dict(self.model, options=options)


def shard_network(network: nn.Module, mesh) -> None:
    """Each decoder layer with its diffusion block one FSDP2 unit, the rest the root unit, over `mesh`."""
    for unit in units(network):
        fully_shard(unit, mesh=mesh)
    fully_shard(network, mesh=mesh)
    if hasattr(network, "losses_at"):  # validation's entry point, not forward: it gathers the root unit too
        register_fsdp_forward_method(network, "losses_at")


def language_model(network: nn.Module) -> nn.Module:
    """The transformers CausalLM inside an L2D model (its frozen base) or a finetuned baseline (peft's or its own)."""
    lm = network.base if hasattr(network, "base") else network.model
    return lm.get_base_model() if hasattr(lm, "get_base_model") else lm


def units(network: nn.Module) -> list[list[nn.Module]]:
    """The sharding units below the root: each decoder layer with the diffusion block that calls its modules."""
    layers = list(get(language_model(network), network.family.layers))
    blocks = list(network.diffusion.blocks) if is_l2d(network) else []
    return [[layer, blocks[i]] if blocks else [layer] for i, layer in enumerate(layers)]


@contextmanager
def whole_trainable(network: nn.Module):
    """The trainable parameters of a sharded network gathered whole on every process for the duration (the frozen
    base stays sharded): for what reads them outside a forward, the export and w_d(t). Every process must enter, in
    the same order; on an unsharded network it does nothing."""
    sharded = [(module, name, parameter) for module in network.modules()
               for name, parameter in module.named_parameters(recurse=False)
               if parameter.requires_grad and isinstance(parameter, DTensor)]
    with torch.inference_mode(False), torch.no_grad():  # validation's hooks run in inference mode
        for module, name, parameter in sharded:
            module._parameters[name] = nn.Parameter(parameter.detach().full_tensor())
    try:
        yield
    finally:
        for module, name, parameter in sharded:
            module._parameters[name] = parameter


def gradient_norm(gradients: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of gradients that may be shards (DTensor): over every process's shard, the same on each."""
    norms = [torch.linalg.vector_norm(g.float()) for g in gradients]
    return torch.linalg.vector_norm(torch.stack([n.full_tensor() if isinstance(n, DTensor) else n for n in norms]))
