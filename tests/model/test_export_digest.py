"""Exports you can trust: a digest written last and checked at load refuses an edited or damaged export in one
line that names the file; the base check cannot be dropped by deleting it; a full disk leaves the earlier export
as it was; what is written is as readable as the user's umask allows."""

import errno
import json
import os
import stat

import pytest
import torch
from safetensors import SafetensorError

import l2d.model.checkpoint
from l2d import L2DConfig, L2DModel
from l2d.files import DiskFull, umask, write_atomically
from l2d.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_meta
from l2d.model.digest import DIGEST_FILE, OPT_OUT, ExportError, write_digest
from l2d.model.finetune import FINETUNE_FILE, Finetune, finetuned_base
from l2d.model.tiny import tiny_model
from l2d.validation import one_line
from tests.tiny import tiny_base


def exported(directory, seed: int = 0):
    torch.manual_seed(seed)
    model = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4, sigma=32))
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(directory)
    return model


def edit_config(directory, **fields):
    path = directory / CONFIG_FILE
    meta = json.loads(path.read_text())
    meta.update(fields)
    path.write_text(json.dumps(meta, indent=2))
    return meta


@pytest.mark.parametrize("field, value", [("sigma", 8.0), ("start", "zero")])
def test_an_edited_config_is_refused_naming_the_file(field, value, tmp_path):
    exported(tmp_path / "export")
    meta = json.loads((tmp_path / "export" / CONFIG_FILE).read_text())
    edit_config(tmp_path / "export", config={**meta["config"], field: value})
    for load in (lambda: L2DModel.from_pretrained(tmp_path / "export", base=tiny_base()),
                 lambda: read_meta(tmp_path / "export")):  # what evaluate and the RL stage read first
        with pytest.raises(ExportError, match=rf"{CONFIG_FILE} is not the file this export was written with "
                                              rf"\(sha256 .*, {DIGEST_FILE} records .*\): edited, truncated"):
            load()


@pytest.mark.parametrize("damage", ["truncated", "one byte changed"])
def test_a_damaged_weight_file_is_refused_naming_it(damage, tmp_path):
    exported(tmp_path / "export")
    weights = tmp_path / "export" / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    if damage == "truncated":
        data = data[: len(data) - 100]
    else:
        data[-1] ^= 1  # a weight's last byte: the header still reads, the numbers differ
    weights.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=rf"{WEIGHTS_FILE} is not the file this export was written with"):
        L2DModel.from_pretrained(tmp_path / "export", base=tiny_base())


def test_the_base_check_cannot_be_deleted_silently(tmp_path, monkeypatch, caplog):
    exported(tmp_path / "export")
    edit_config(tmp_path / "export", base_probe=None)
    other_base = tiny_base(seed=1)  # same architecture, other weights: what the probe tells apart
    with pytest.raises(ExportError, match=rf"{CONFIG_FILE} is not the file"):
        L2DModel.from_pretrained(tmp_path / "export", base=other_base)
    (tmp_path / "export" / DIGEST_FILE).unlink()  # the digest deleted too
    with pytest.raises(ExportError, match=rf"{DIGEST_FILE} is missing"):
        L2DModel.from_pretrained(tmp_path / "export", base=other_base)
    write_digest(tmp_path / "export")  # a digest made again over the edited file
    with pytest.raises(ExportError, match=r"records no base_probe, the sketch of the base's weights"):
        L2DModel.from_pretrained(tmp_path / "export", base=other_base)
    monkeypatch.setenv(OPT_OUT, "1")  # the documented opt-out: loads, and says what was not checked
    assert L2DModel.from_pretrained(tmp_path / "export", base=other_base).config.sigma == 32
    assert "records no base_probe" in caplog.text and f"loaded anyway: {OPT_OUT}=1" in caplog.text


def test_a_missing_digest_names_the_opt_out_and_the_opt_out_loads(tmp_path, monkeypatch, caplog):
    model = exported(tmp_path / "export")
    (tmp_path / "export" / DIGEST_FILE).unlink()
    with pytest.raises(ExportError, match=rf"{DIGEST_FILE} is missing: .*; set {OPT_OUT}=1 to load it unchecked"):
        L2DModel.from_pretrained(tmp_path / "export", base=tiny_base())
    monkeypatch.setenv(OPT_OUT, "1")
    restored = L2DModel.from_pretrained(tmp_path / "export", base=tiny_base())
    assert all(torch.equal(p, q) for (_, p), (_, q) in zip(model.trainable_named_parameters(),
                                                           restored.trainable_named_parameters(), strict=True))
    assert f"{DIGEST_FILE} is missing" in caplog.text


def test_the_cli_says_it_in_one_line(tmp_path, capsys):
    exported(tmp_path / "export")
    (tmp_path / "export" / WEIGHTS_FILE).write_bytes(b"")
    with pytest.raises(SystemExit) as ended:
        one_line(lambda cfg: L2DModel.from_pretrained(tmp_path / "export", base=tiny_base()))(None)
    printed = capsys.readouterr().err
    assert ended.value.code == 1 and printed.count("\n") == 1 and f"{WEIGHTS_FILE} is not the file" in printed


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_exports_are_as_readable_as_the_umask_allows(mask, tmp_path):
    previous = os.umask(mask)
    try:
        exported(tmp_path / "export")
    finally:
        os.umask(previous)
    export = tmp_path / "export"
    assert stat.S_IMODE(export.stat().st_mode) == 0o777 & ~mask
    files = list(export.iterdir())
    assert {WEIGHTS_FILE, CONFIG_FILE, DIGEST_FILE} <= {f.name for f in files}
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask for f in files)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                                                   "StorageFull, message: \"No space left on device\" })")])
def test_disk_full_while_exporting_leaves_the_earlier_export_whole(error, tmp_path, monkeypatch):
    first = exported(tmp_path / "export")
    before = {path.name: path.read_bytes() for path in (tmp_path / "export").iterdir()}

    def full(*args, **kwargs):
        raise error

    monkeypatch.setattr(l2d.model.checkpoint, "save_file", full)
    with pytest.raises(DiskFull, match=rf"no space left on the device writing .*export/{WEIGHTS_FILE}: the earlier "
                                       rf".*export is intact, and nothing half-written is left"):
        exported(tmp_path / "export", seed=1)
    assert {path.name: path.read_bytes() for path in (tmp_path / "export").iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["export"]  # no staging directory left
    restored = L2DModel.from_pretrained(tmp_path / "export", base=tiny_base())
    assert all(torch.equal(p, q) for (_, p), (_, q) in zip(first.trainable_named_parameters(),
                                                           restored.trainable_named_parameters(), strict=True))
    with pytest.raises(DiskFull, match=rf"writing .*fresh/{WEIGHTS_FILE}: no .*fresh was written"):
        exported(tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_a_baseline_export_is_checked_too(tmp_path, caplog):
    Finetune(tiny_model()[0], lora_rank=4).save_pretrained(tmp_path / "lora")
    assert json.loads((tmp_path / "lora" / DIGEST_FILE).read_text())["sha256"].keys() >= {
        "adapter_model.safetensors", "adapter_config.json", FINETUNE_FILE}
    finetuned_base(tiny_model()[0], tmp_path / "lora")  # whole: loads
    adapter = tmp_path / "lora" / "adapter_model.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:-8])
    with pytest.raises(ExportError, match=r"adapter_model.safetensors is not the file this export was written with"):
        finetuned_base(tiny_model()[0], tmp_path / "lora")
    # one written before digests (no version, no digest): loads with a warning
    Finetune(tiny_model()[0], lora_rank=4).save_pretrained(tmp_path / "old")
    info = json.loads((tmp_path / "old" / FINETUNE_FILE).read_text())
    del info["version"]
    (tmp_path / "old" / FINETUNE_FILE).write_text(json.dumps(info))
    (tmp_path / "old" / DIGEST_FILE).unlink()
    finetuned_base(tiny_model()[0], tmp_path / "old")
    assert "written before exports carried a digest" in caplog.text


def test_a_file_written_whole_is_as_readable_as_the_umask_allows_and_says_when_the_disk_is_full(tmp_path):
    """metrics.csv, results.json, reports: written under a private temporary name, then given a new file's mode."""
    path = tmp_path / "results.json"
    write_atomically(path, lambda temporary: temporary.write_text("{}"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask()

    def full(temporary):
        temporary.write_text("{\"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFull, match=rf"writing {path}: the earlier {path} is intact, and nothing half-written"):
        write_atomically(path, full)
    assert path.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["results.json"]
