"""The benchmark runs end to end on the tiny model (speed itself is measured, never asserted)."""

import json
import logging

from l2d.bench import bench
from tests.compose import compose_config


def test_bench_runs_every_setting_and_writes_json_and_markdown(tmp_path):
    cfg = compose_config("bench", ["model=tiny", "decode.batch_sizes=[1,2]", "decode.prompt_tokens=8",
                                   "decode.new_tokens=3", "warmup=0", "repeats=1", "train.batch=2",
                                   "train.sequence=16", "profile=true"], tmp_path)
    result = bench(cfg)
    saved = json.loads((tmp_path / "bench.json").read_text())
    decode = [r for r in saved["rows"] if r["kind"] == "decode"]
    assert len(decode) == 2 * (2 + 5 * 2)  # batch sizes x (transformers, plain, 5 L2D settings x guidance)
    assert {r["nfe"] for r in decode} == {1, 3, 7, 15, 31}
    assert all(r["tokens_per_s"] > 0 for r in decode)
    train = {r["setting"]: r for r in saved["rows"] if r["kind"] == "train"}
    assert set(train) == {"l2d_lora", "l2d_full", "lora", "full"} and train["lora"]["vs_lora"] == 1.0
    markdown = (tmp_path / "bench.md").read_text()
    assert "| L2D midpoint levels=8 + guidance | 2 | 15 |" in markdown and result["environment"]["device"]
    assert "aten::scaled_dot_product_attention" in (tmp_path / "profile.txt").read_text()


def test_bench_adds_fast_path_rows_when_compiling(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="l2d.bench")
    cfg = compose_config("bench", ["model=tiny", "decode.batch_sizes=[1]", "decode.prompt_tokens=8",
                                   "decode.new_tokens=3", "decode.guidance=[false]", "decode.compile=eager",
                                   "decode.l2d=[{solver: midpoint, levels: 2}]", "warmup=1", "repeats=1",
                                   "train.enabled=false"], tmp_path)
    rows = {r["setting"]: r for r in bench(cfg)["rows"]}
    assert set(rows) == {"transformers generate()", "ours, plain LM (levels=1)", "L2D midpoint levels=2",
                         "L2D midpoint levels=2 [compile=eager]"}
    assert rows["L2D midpoint levels=2 [compile=eager]"]["nfe"] == 3
    # Each setting is logged as it starts and ends (a cut run says which one took the time)
    messages = [record.getMessage() for record in caplog.records if record.name == "l2d.bench"]
    assert "L2D midpoint levels=2 [compile=eager], batch 1: warm-up" in messages
    assert any(m.startswith("L2D midpoint levels=2 [compile=eager], batch 1: median") for m in messages)
