"""A disk that fills up while a checkpoint is written: one line naming the file and the earlier checkpoints, which
are intact, and no half-written file left (the writer is patched to fail as a full disk does: ENOSPC after part
of the file is written)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins.io import torch_io

from l2d.files import DiskFull
from l2d.lightning.callbacks import AtomicCheckpointIO
from l2d.train import train
from l2d.validation import one_line


def full_disk_after(writes: int):
    """A checkpoint writer that writes `writes` checkpoints, then fills the disk halfway through the next."""
    written = []

    def write(checkpoint, path):
        if len(written) == writes:
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        torch.save(checkpoint, path)

    return write


def test_a_full_disk_keeps_the_earlier_checkpoint_and_says_so_in_one_line(tmp_path, monkeypatch):
    directory = tmp_path / "checkpoints"
    monkeypatch.setattr(torch_io, "_atomic_save", full_disk_after(1))
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1}, directory / "last.ckpt")
    with pytest.raises(DiskFull) as failure:
        io.save_checkpoint({"global_step": 2}, directory / "last.ckpt")
    message = str(failure.value)
    assert "\n" not in message and f"writing the checkpoint {directory / 'last.ckpt'}" in message
    assert f"the earlier checkpoint last.ckpt in {directory} is intact" in message
    assert [path.name for path in directory.iterdir()] == ["last.ckpt"]  # no .last.ckpt.partial
    assert torch.load(directory / "last.ckpt", weights_only=False)["global_step"] == 1


def test_other_write_errors_leave_no_partial_file_and_stay_themselves(tmp_path, monkeypatch):
    def broken(checkpoint, path):
        Path(path).write_bytes(b"half")
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(torch_io, "_atomic_save", broken)
    with pytest.raises(OSError, match="Input/output error") as failure:
        AtomicCheckpointIO().save_checkpoint({}, tmp_path / "last.ckpt")
    assert not isinstance(failure.value, DiskFull) and list(tmp_path.iterdir()) == []


def test_a_run_whose_disk_fills_ends_in_one_line_naming_what_survived(tiny_train, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(torch_io, "_atomic_save", full_disk_after(2))  # step 1's checkpoint and last.ckpt
    cfg = tiny_train("trainer.max_steps=3", "callbacks.model_checkpoint.every_n_train_steps=1", "export=false")
    with pytest.raises(SystemExit) as ended:
        one_line(train)(cfg)
    assert ended.value.code == 1
    checkpoints = tmp_path / "checkpoints"
    assert capsys.readouterr().err == (
        f"error: [Errno 28] no space left on the device writing the checkpoint {checkpoints / 'step000002.ckpt'}: "
        f"the earlier checkpoints last.ckpt, step000001.ckpt in {checkpoints} are intact, and nothing half-written "
        "is left (free some space; a run resumes from its last.ckpt)\n")
    assert sorted(path.name for path in checkpoints.iterdir()) == ["last.ckpt", "step000001.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["global_step"] == 1
