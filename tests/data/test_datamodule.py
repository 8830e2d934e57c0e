"""L2DDataModule: batch format, class ids, splits, counts, and a seeded order that resumes exactly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from l2d.data.chat import IGNORE_INDEX
from l2d.data.sources import GSM8KSource, JsonlSource, ReasoningGymSource
from l2d.lightning.datamodule import L2DDataModule
from tests.data.conftest import NumberStream, byte_tokenizer, write_jsonl


def jsonl_data(tmp_path, rows, tokenizer, **kwargs) -> L2DDataModule:
    data = L2DDataModule(tokenizer, JsonlSource(str(write_jsonl(tmp_path / "d.jsonl", rows))), **kwargs)
    data.setup()
    return data


def test_batch_format_right_padded_and_masked(tmp_path, tokenizer):
    rows = [{"prompt": "q" * n, "response": "a" * n, "class_name": "x"} for n in (1, 5, 2, 9)]
    data = jsonl_data(tmp_path, rows, tokenizer, micro_batch_size=4, val_size=0)
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "labels", "class_labels"}
    assert all(t.dtype == torch.long for t in batch.values())
    lengths = batch["attention_mask"].sum(1)
    assert batch["input_ids"].shape == batch["labels"].shape == (4, lengths.max())  # padded to this batch only
    assert sorted(lengths.tolist()) == sorted(len(item["input_ids"]) for item in data.train_set)
    for row, n in enumerate(lengths.tolist()):
        assert batch["attention_mask"][row, :n].all() and not batch["attention_mask"][row, n:].any()
        assert (batch["input_ids"][row, n:] == tokenizer.pad_token_id).all()
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
    assert batch["class_labels"].shape == (4,)


def test_pads_with_eos_when_there_is_no_pad_token(tmp_path):
    tokenizer = byte_tokenizer(pad=False)
    data = jsonl_data(tmp_path, [{"prompt": "q", "response": "a"}, {"prompt": "qqqq", "response": "a"}],
                      tokenizer, micro_batch_size=2, val_size=0)
    batch = next(iter(data.train_dataloader()))
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.eos_token_id).all()


def test_class_ids_sorted_names_null_for_unlabeled(tmp_path, tokenizer):
    rows = [{"prompt": "1", "response": "b", "class_name": "b"}, {"prompt": "2", "response": "a", "class_name": "a"},
            {"prompt": "3", "response": "none"}]
    data = jsonl_data(tmp_path, rows, tokenizer, micro_batch_size=3, val_size=0)
    assert data.class_names == ["a", "b"]
    batch = next(iter(data.train_dataloader()))
    by_answer = {tokenizer.decode(ids[labels != IGNORE_INDEX][:-1]): c.item()
                 for ids, labels, c in zip(batch["input_ids"], batch["labels"], batch["class_labels"], strict=True)}
    assert by_answer == {"a": 1, "b": 2, "none": 0}


def test_fixed_class_names_set_the_ids(tmp_path, tokenizer):
    rows = [{"prompt": "1", "response": "b", "class_name": "b"}]
    data = jsonl_data(tmp_path, rows, tokenizer, class_names=["b", "a"], val_size=0)
    assert data.class_names == ["b", "a"] and data.train_set[0]["class_label"] == 1
    with pytest.raises(ValueError, match=r"\['b'\] that are not in class_names"):
        jsonl_data(tmp_path, rows, tokenizer, class_names=["a"], val_size=0)


def test_over_long_dropped_and_counted(tmp_path, tokenizer):
    rows = [{"prompt": "short", "response": "ok"}] * 3 + [{"prompt": "x" * 200, "response": "long"}] * 2
    data = jsonl_data(tmp_path, rows, tokenizer, max_length=100, val_size=0)
    assert (data.stats.examples, data.stats.dropped_too_long) == (3, 2)
    assert data.stats.tokens == sum(len(item["input_ids"]) for item in data.train_set)
    assert data.stats.supervised_tokens == 3 * 3  # "o", "k" and the end-of-turn token, in each example


def test_seeded_validation_split(tmp_path, tokenizer):
    rows = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(40)]
    first = jsonl_data(tmp_path, rows, tokenizer, val_size=0.25, seed=1)
    again = jsonl_data(tmp_path, rows, tokenizer, val_size=0.25, seed=1)
    other = jsonl_data(tmp_path, rows, tokenizer, val_size=10, seed=2)
    assert (len(first.train_set), len(first.val_set)) == (30, 10)
    assert first.val_set == again.val_set and first.val_set != other.val_set
    ids = lambda items: {tuple(item["input_ids"]) for item in items}  # noqa: E731
    assert not ids(first.train_set) & ids(first.val_set)


def test_gsm8k_validation_is_the_heldout_slice(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "gsm.jsonl", [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(520)])
    data = L2DDataModule(tokenizer, [GSM8KSource(path=str(path)), ReasoningGymSource(size=10)], val_size=5)
    data.setup()
    val_text = [tokenizer.decode(item["input_ids"]) for item in data.val_set]
    assert sum("user\nq" in text for text in val_text) == 500 and len(val_text) == 505
    assert "user\nq20<" in val_text[0]  # the heldout slice comes first, in file order
    assert data.class_names == ["basic_arithmetic", "chain_sum", "gsm_symbolic", "math"]


def unpadded(loader) -> list[list[list[int]]]:
    """Each batch as its examples' token ids, without padding."""
    return [[row[mask.bool()].tolist() for row, mask in zip(b["input_ids"], b["attention_mask"], strict=True)]
            for b in loader]


def epoch_batches(data: L2DDataModule, epoch: int | None = None) -> list[list[list[int]]]:
    loader = data.train_dataloader()
    if epoch is not None:
        loader.sampler.set_epoch(epoch)  # as Lightning does at every epoch start
    return unpadded(loader)


def test_order_is_seeded_per_epoch_and_skip_gives_the_tail(tmp_path, tokenizer):
    rows = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(23)]
    data = jsonl_data(tmp_path, rows, tokenizer, micro_batch_size=4, val_size=0, seed=5)
    full = epoch_batches(data)
    assert len(full) == 6 and [len(b) for b in full] == [4, 4, 4, 4, 4, 3]
    assert full == epoch_batches(jsonl_data(tmp_path, rows, tokenizer, micro_batch_size=4, val_size=0, seed=5))
    next_epoch = epoch_batches(data, epoch=1)
    assert sorted(sum(next_epoch, [])) == sorted(sum(full, [])) and next_epoch != full
    data.skip_batches = 4
    assert epoch_batches(data) == full[4:]
    assert epoch_batches(data, epoch=1) == next_epoch  # the skip belongs to the epoch being resumed only


def streamed(tokenizer, workers: int = 0, skip: int = 0, max_length: int = 64) -> L2DDataModule:
    data = L2DDataModule(tokenizer, NumberStream(), max_length=max_length, micro_batch_size=3, num_workers=workers)
    data.setup()
    data.skip_batches = skip
    return data


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_order_is_fixed_and_skip_gives_the_tail(tokenizer, workers):
    full = unpadded(streamed(tokenizer).train_dataloader())
    assert sum(len(batch) for batch in full) == 19  # two dropped as too long
    assert unpadded(streamed(tokenizer, workers).train_dataloader()) == full
    resumed = streamed(tokenizer, workers, skip=3)
    loader = resumed.train_dataloader()
    assert unpadded(loader) == full[3:]
    resumed.trainer = SimpleNamespace(current_epoch=1)  # the loader follows the trainer to the next epoch
    next_epoch = unpadded(loader)
    assert next_epoch != full and sorted(sum(next_epoch, [])) == sorted(sum(full, []))
    data = streamed(tokenizer, workers)
    assert (data.class_names, data.stats.val_examples, data.stats.examples) == (["numbers"], 1, None)


def test_streamed_data_empty_after_filtering_fails_at_the_first_batch(tokenizer):
    with pytest.raises(ValueError, match="empty after filtering \\(21 longer than max_length=20"):
        next(iter(streamed(tokenizer, max_length=20).train_dataloader()))


def test_mixing_streamed_and_in_memory_sources_is_refused(tokenizer):
    with pytest.raises(ValueError, match="not a mix"):
        L2DDataModule(tokenizer, [NumberStream(), ReasoningGymSource(size=2)])
