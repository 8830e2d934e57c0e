"""The SLURM launcher asks for one task and one GPU per trainer device: Lightning refuses a SLURM job whose
ntasks-per-node differs from trainer.devices."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from tests.compose import compose_config


@pytest.mark.parametrize("trainer, devices", [("default", None), ("ddp", 4), ("fsdp", 8)])
def test_tasks_per_node_follow_trainer_devices(tmp_path, trainer, devices):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    overrides = ["hydra/launcher=slurm", f"trainer={trainer}"] + ([f"trainer.devices={devices}"] if devices else [])
    launcher = instantiate(compose_config("train", overrides, tmp_path).hydra.launcher)
    assert launcher.params["tasks_per_node"] == launcher.params["gpus_per_node"] == (devices or 1)
