"""trainer=fsdp's sharding (l2d.lightning.strategies) on two CPU processes (gloo): decoder layer l and the diffusion
block that calls its projections are one unit, so the sharded model computes what the whole one does, the frozen
LM's buffers stay float32 under bf16 autocast, and the trainable parameters gather whole for the export."""

from __future__ import annotations

import copy
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor

from l2d import L2DConfig, L2DModel
from l2d.lightning.strategies import shard_network, units, whole_trainable
from tests.tiny import tiny_base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def network(gradient_checkpointing: bool) -> L2DModel:
    """A tiny L2D model whose path is away from its start, so that every trainable group has a gradient."""
    torch.manual_seed(0)
    model = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4, gradient_checkpointing=gradient_checkpointing))
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.train()


def batch():
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[:, :5] = -100
    return dict(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)


def step(model, generator_seed: int = 2):
    """One bf16-autocast training forward and backward (as bf16-mixed runs), and the t = 0 logits."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch(), generator=torch.Generator().manual_seed(generator_seed))
        at_0 = model.losses_at(batch()["input_ids"], batch()["attention_mask"], batch()["labels"], timesteps=(0.0,))
    out.loss.backward()
    return out.loss.detach(), at_0[0].loss


def compare(rank: int, port: int, gradient_checkpointing: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        whole = network(gradient_checkpointing)
        sharded = copy.deepcopy(whole)
        shard_network(sharded, init_device_mesh("cpu", (2,)))

        # Sharded at rest: every unit's weights, the LM's shared projections included, are shards.
        layer, block = units(sharded)[0]
        q_proj = layer.self_attn.q_proj.weight
        assert block.projections["q_proj"].base_layer.weight is q_proj  # still one module, called by both
        assert isinstance(q_proj, DTensor) and q_proj.to_local().shape[0] == q_proj.shape[0] // 2
        # The frozen LM's RoPE frequencies are never cast (FSDP2 leaves buffers alone; no FSDP1 buffer_dtype).
        inv_freq = sharded.base.model.rotary_emb.inv_freq
        assert inv_freq.dtype == torch.float32 and torch.equal(inv_freq, whole.base.model.rotary_emb.inv_freq)

        loss, at_0 = step(sharded)
        expected_loss, expected_at_0 = step(whole)
        # Gathered weights are the float32 weights themselves: the same computation to the bit, main path included.
        assert torch.equal(loss, expected_loss) and torch.equal(at_0, expected_at_0)
        # Both processes saw the same batch: the averaged gradient of every trainable parameter is the whole one's.
        expected = dict(whole.trainable_named_parameters())
        for name, parameter in sharded.trainable_named_parameters():
            assert parameter.grad is not None, name
            torch.testing.assert_close(parameter.grad.full_tensor(), expected[name].grad, rtol=1e-5, atol=1e-7)

        with whole_trainable(sharded):  # the export's and w_d's view: every trainable parameter whole
            got = dict(sharded.trainable_named_parameters())
            assert got.keys() == expected.keys()
            assert all(type(p.data) is torch.Tensor and torch.equal(p, expected[n]) for n, p in got.items())
            with torch.no_grad():
                t = torch.tensor([[0.0, 0.5, 1.0]])
                w_d = sharded.diffusion.condition(t, None).fusion()
                assert torch.equal(w_d, whole.diffusion.condition(t, None).fusion())
        assert all(isinstance(p, DTensor) for _, p in sharded.trainable_named_parameters())  # sharded again
    finally:
        dist.destroy_process_group()


def test_rl_stages_are_refused_in_one_line():
    from types import SimpleNamespace

    from l2d.lightning.reinforce import ReinforceModule
    from l2d.lightning.strategies import ShardedDataParallel
    from l2d.lightning.trainable import TrainableCheckpoints
    from l2d.validation import InputError

    class Rollouts(TrainableCheckpoints):
        shardable = ReinforceModule.shardable

    module = Rollouts()
    module._trainer = SimpleNamespace(strategy=ShardedDataParallel())
    with pytest.raises(InputError, match=r"^trainer=fsdp cannot shard Rollouts: .* use trainer=ddp or one device$"):
        module.configure_model()


@pytest.mark.slow
@pytest.mark.parametrize("gradient_checkpointing", [False, True])
def test_sharded_model_computes_what_the_whole_one_does(gradient_checkpointing):
    mp.spawn(compare, args=(free_port(), gradient_checkpointing), nprocs=2)
