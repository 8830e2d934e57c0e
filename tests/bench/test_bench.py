"""The benchmark runs end to end on the tiny model (speed itself is measured, never asserted)."""

import json
import logging
import os

import pytest
import torch
from torch import nn

from l2d import L2DConfig, L2DModel
from l2d.bench import bench, training_flops, use_inductor_cache
from l2d.model.finetune import Finetune
from tests.compose import compose_config
from tests.tiny import tiny_base

TINY = ["model=tiny", "inductor_cache=null", "decode.prompt_tokens=8", "decode.new_tokens=3", "warmup=1", "repeats=1",
        "train.shapes=[{batch:2,prompt:6,answer:4}]"]


def test_bench_runs_every_setting_and_writes_json_and_markdown(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="l2d.bench")
    cfg = compose_config("bench", [*TINY, "decode.batch_sizes=[1,2]", "decode.guidance=[false,true]",
                                   "decode.merge_lora=[false,true]", "train.methods=[l2d_lora,l2d_full,lora,full]",
                                   "profile=true"], tmp_path)
    result = bench(cfg)
    saved = json.loads((tmp_path / "bench.json").read_text())
    decode = [r for r in saved["rows"] if r["kind"] == "decode"]
    assert len(decode) == 2 * (2 + 2 * 2)  # batch sizes x (transformers, plain, guidance x merged); eager on CPU
    assert {r["nfe"] for r in decode} == {1, 15} and all(r["tokens_per_s"] > 0 for r in decode)
    assert all(r["first_call_s"] > 0 and r["dtype"] == "float32" for r in decode)
    train = {r["setting"]: r for r in saved["rows"] if r["kind"] == "train"}
    assert set(train) == {"l2d_lora", "l2d_full", "lora", "full"} and train["lora"]["vs_lora"] == 1.0
    assert all(r["error"] is None and r["flops"] > 0 for r in train.values())
    markdown = (tmp_path / "bench.md").read_text()
    assert "| float32 | L2D midpoint levels=8 + guidance [merged LoRA] | 2 | 15 |" in markdown
    assert "| float32 | l2d_lora | 2 × (6 + 4) |" in markdown and result["environment"]["device"]
    assert "aten::scaled_dot_product_attention" in (tmp_path / "profile.txt").read_text()
    # Each setting is logged as it starts and ends (a cut run says which one took the time)
    messages = [record.getMessage() for record in caplog.records if record.name == "l2d.bench"]
    assert "L2D midpoint levels=8, float32, batch 1: first call" in messages
    assert any(m.startswith("L2D midpoint levels=8, float32, batch 1: median") for m in messages)


def test_bench_compiles_the_l2d_rows_and_measures_each_dtype(tmp_path):
    cfg = compose_config("bench", [*TINY, "decode.batch_sizes=[1]", "decode.compile=eager", "decode.eager=true",
                                   "decode.transformers=false", "dtypes=[float32,bfloat16]",
                                   "train.methods=[l2d_lora]"], tmp_path)
    rows = bench(cfg)["rows"]
    decode = {(r["dtype"], r["setting"]) for r in rows if r["kind"] == "decode"}
    assert decode == {(dtype, setting) for dtype in ("float32", "bfloat16") for setting in
                      ("ours, plain LM (levels=1)", "L2D midpoint levels=8", "L2D midpoint levels=8 [compile=eager]")}
    assert all(r["vs_transformers"] is None for r in rows if r["kind"] == "decode")
    assert [r["dtype"] for r in rows if r["kind"] == "train"] == ["float32", "bfloat16"]


def test_an_out_of_memory_training_step_is_a_row(tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr("l2d.bench.training_row", out_of_memory)
    cfg = compose_config("bench", [*TINY, "decode.enabled=false"], tmp_path)
    rows = bench(cfg)["rows"]
    assert [(r["setting"], r["error"]) for r in rows] == [("l2d_lora", "out of memory"), ("lora", "out of memory")]
    assert "| float32 | lora | 2 × (6 + 4) | out of memory |" in (tmp_path / "bench.md").read_text()


@pytest.mark.parametrize("method", ["l2d_lora", "lora", "full"])
def test_training_flops_count_4_per_frozen_weight_and_6_per_trained_one(method):
    """A step's model FLOPs from its linear layers: frozen weights compute forward and input gradient (4 per
    weight and row), trained ones also their own gradient (6), L2D's main path the forward only (2)."""
    base = tiny_base()
    network = {"l2d_lora": lambda: L2DModel(base, L2DConfig(dim=16, lora_rank=4)),
               "lora": lambda: Finetune(base, lora_rank=4), "full": lambda: Finetune(base, lora_rank=0)}[method]()
    tokens, supervised = 100, 30
    width, ffn, layers, vocabulary, kv = 64, 128, 2, 256, 32
    block = 2 * width * width + 2 * width * kv + 3 * width * ffn  # q, o, k, v, gate, up, down
    head = width * vocabulary
    if method == "full":
        expected = 6 * layers * block * tokens + 6 * head * supervised
    elif method == "lora":
        lora = layers * 4 * (2 * (width + width) + 2 * (width + kv) + 3 * (width + ffn))  # rank 4: r (in + out)
        expected = (4 * layers * block + 6 * lora) * tokens + 4 * head * supervised
    else:
        trained = sum(6 * m.in_features * m.out_features for m in network.diffusion.modules()
                      if isinstance(m, nn.Linear) and m.weight.requires_grad)
        shared = layers * (2 * width * width + 3 * width * ffn)  # q, o, gate, up, down; no k, v in the path
        expected = 2 * layers * block * tokens + (4 * shared + trained + 4 * head) * supervised
    assert training_flops(network, tokens, supervised) == expected


def test_compiled_graphs_persist_where_configured_unless_the_environment_chose(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    use_inductor_cache(tmp_path / "inductor")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")
    use_inductor_cache(tmp_path / "elsewhere")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")


def test_a_run_cut_short_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    """bench.json is rewritten after each batch size: a lease's time limit costs only the setting it cut."""
    import l2d.bench

    timed = l2d.bench.timed

    def cut_at_batch_2(run, device, warmup, repeats, label):
        if label.endswith("batch 2"):
            raise KeyboardInterrupt
        return timed(run, device, warmup, repeats, label)

    monkeypatch.setattr(l2d.bench, "timed", cut_at_batch_2)
    cfg = compose_config("bench", [*TINY, "decode.batch_sizes=[1,2]", "train.enabled=false"], tmp_path)
    with pytest.raises(KeyboardInterrupt):
        bench(cfg)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert {r["batch"] for r in saved["rows"]} == {1} and len(saved["rows"]) == 3
