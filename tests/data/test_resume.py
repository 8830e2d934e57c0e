"""A run resumed from a mid-epoch Lightning checkpoint sees exactly the batches it would have seen."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from l2d.data.sources import JsonlSource
from l2d.lightning.datamodule import L2DDataModule
from tests.data.conftest import NumberStream, write_jsonl


class BatchRecorder(LightningModule):
    """Trains nothing; remembers (epoch, batch fingerprint) of every training step."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, list[int]]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, batch["input_ids"].sum(1).tolist()))
        return self.weight.sum() * 0.0

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def fit(data: L2DDataModule, callbacks: list | None = None, ckpt_path: str | None = None) -> BatchRecorder:
    module = BatchRecorder()
    trainer = Trainer(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, callbacks=callbacks, enable_checkpointing=bool(callbacks))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's hints about workers and resumable loaders
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return module


@pytest.mark.parametrize("streamed", [False, True])
def test_resume_mid_epoch_replays_the_remaining_batches(tmp_path, tokenizer, streamed):
    rows = [{"prompt": f"q{i}" * (i % 5 + 1), "response": f"a{i}"} for i in range(23)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)

    def data() -> L2DDataModule:  # 5 micro-batches per epoch either way
        if streamed:
            return L2DDataModule(tokenizer, NumberStream(), max_length=64, micro_batch_size=4)
        return L2DDataModule(tokenizer, JsonlSource(str(path)), micro_batch_size=4, val_size=0.2, seed=1)

    full = fit(data()).seen  # 2 epochs of 5 batches
    fit(data(), callbacks=[ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=7, save_top_k=-1, filename="{step}")])
    checkpoint = tmp_path / "step=7.ckpt"  # saved after the 2nd batch of epoch 1

    # What the training code does: skip the micro-batches of this epoch the checkpoint has trained on.
    state = torch.load(checkpoint, weights_only=False)
    resumed_data = data()
    resumed_data.skip_batches = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["ready"]
    assert resumed_data.skip_batches == 2
    resumed = fit(resumed_data, ckpt_path=str(checkpoint)).seen
    assert full[:7] + resumed == full


def test_resume_refuses_data_with_other_classes(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "response": "a", "class_name": "x"}] * 4)
    data = L2DDataModule(tokenizer, JsonlSource(str(path)), val_size=0)
    with pytest.raises(ValueError, match=r"trained with classes \['y'\], this data gives \['x'\]"):
        data.load_state_dict({"class_names": ["y"]})
