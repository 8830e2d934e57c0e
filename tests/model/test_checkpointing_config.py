"""Gradient checkpointing of the diffusion path: on in the paper-scale recipe, off elsewhere, and the baselines
compose under that recipe too (they have no diffusion path to checkpoint)."""

from hydra.utils import instantiate

from tests.compose import compose_config


def test_paper_llama1b_checkpoints_the_path_and_the_default_job_does_not():
    def config(*overrides):
        return compose_config("train", list(overrides)).method.network

    assert instantiate(config("experiment=paper_llama1b").config).gradient_checkpointing is True
    assert instantiate(config("experiment=paper_llama1b", "method=l2d_full").config).gradient_checkpointing is True
    assert instantiate(config().config).gradient_checkpointing is False
    assert "config" not in config("experiment=paper_llama1b", "method=lora")  # the baseline composes unchanged
