"""Training throughput covers a whole optimizer step: every micro-batch's forward and backward and the step."""

from types import SimpleNamespace

import torch

from l2d.lightning import callbacks


def test_tokens_per_second_spans_every_micro_batch_of_a_step(monkeypatch):
    clock = iter([10.0, 14.0])  # the first micro-batch starts at 10 s, the step ends at 14 s
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    logged = {}
    module = SimpleNamespace(log=lambda name, value: logged.__setitem__(name, value))
    trainer = SimpleNamespace(global_step=0)
    batch = {"attention_mask": torch.ones(2, 5), "labels": torch.tensor([[-100] * 3 + [1, 2]] * 2)}
    throughput = callbacks.Throughput()
    for micro_batch in range(2):  # two micro-batches accumulate into one optimizer step
        throughput.on_train_batch_start(trainer, module, batch, micro_batch)
        trainer.global_step += micro_batch  # the step happens after the last micro-batch's backward
        throughput.on_train_batch_end(trainer, module, None, batch, micro_batch)
        assert bool(logged) == (micro_batch == 1)
    assert logged == {"train/tokens_per_s": 20 / 4.0, "train/supervised_tokens_per_s": 8 / 4.0}
