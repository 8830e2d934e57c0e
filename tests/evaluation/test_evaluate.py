"""`python -m l2d.evaluate` end to end on the tiny model: every task family, every kind of checkpoint."""

import json
import re
from pathlib import Path

import pytest

from l2d.data.splits import GSM8K_HELDOUT_SIZE
from l2d.evaluate import evaluate, print_table
from l2d.train import train
from tests.compose import compose_config
from tests.data_files import GSM8K_20, gsm8k_problems
from tests.training.conftest import SMALL_REASONING_GYM, TINY_RUN

QUICK = ["model=tiny", "limit=2", "batch_size=2", "max_new_tokens=6", "progress=false"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def fixtures(tmp_path: Path) -> dict[str, list[str]]:
    """Task overrides with small local files in each dataset's own schema."""
    math = write_jsonl(tmp_path / "math.jsonl", [
        {"problem": f"What is {i}+{i}?", "level": "Level 1", "type": "Algebra",
         "solution": f"It is $\\boxed{{{2 * i}}}$."} for i in range(8)])
    mbpp = write_jsonl(tmp_path / "mbpp.jsonl", [
        {"task_id": i, "text": "Write a function add(a, b) returning the sum.",
         "code": "def add(a, b):\n    return a + b", "test_list": ["assert add(1, 2) == 3"], "test_setup_code": "",
         "challenge_test_list": []} for i in range(8)])
    mmlu = write_jsonl(tmp_path / "mmlu.jsonl", [
        {"question": f"Question {i}?", "subject": "anatomy", "choices": ["w", "x", "y", "z"], "answer": i % 4}
        for i in range(8)])
    problems = gsm8k_problems()
    train = write_jsonl(tmp_path / "gsm8k_train.jsonl", [problems[i % 20] for i in range(GSM8K_HELDOUT_SIZE + 10)])
    return {
        "gsm8k": ["task=gsm8k", f"task.options.path={GSM8K_20}"],
        "gsm8k_heldout": ["task=gsm8k_heldout", f"task.options.path={train}"],
        "math": ["task=math", f"task.options.path={math}"],
        "humaneval": ["task=humaneval", "samples=2"],
        "mbpp": ["task=mbpp", f"task.options.path={mbpp}", "samples=2"],
        "mmlu": ["task=mmlu", f"task.options.path={mmlu}"],
        "reasoning_gym": ["task=reasoning_gym/chain_sum", "task.options.size=4"],
    }


CODE = pytest.mark.bwrap  # their programs run in the sandbox


@pytest.mark.parametrize("family", ["gsm8k", "gsm8k_heldout", "math", pytest.param("humaneval", marks=CODE),
                                    pytest.param("mbpp", marks=CODE), "mmlu", "reasoning_gym"])
def test_base_model_on_each_task_family(family, tmp_path):
    result = evaluate(compose_config("evaluate", QUICK + fixtures(tmp_path)[family], tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["summary"] == result["summary"]
    assert saved["task"] == {"reasoning_gym": "reasoning_gym/chain_sum"}.get(family, family)  # reports tell them apart
    assert saved["summary"]["n"] == 2 and len(saved["records"]) == 2
    assert saved["model"]["method"] == "base" and saved["decoding"]["solver"] == "none"
    assert saved["summary"]["mean_nfe"] == 1.0
    record = saved["records"][0]
    assert {"id", "generations", "answer", "correct", "extracted", "nfe"} <= set(record)
    if family in ("humaneval", "mbpp"):
        assert saved["metric"] == "pass@k" and "pass@1" in saved["summary"] and len(record["generations"]) == 2
    # generations that never stop are cut at max_new_tokens, scored, and counted
    assert saved["summary"]["n_cut_at_max_new_tokens"] == sum(any(r["cut_at_max_new_tokens"]) for r in saved["records"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Exports of a tiny L2D-LoRA run and a tiny LoRA run."""
    root = tmp_path_factory.mktemp("trained")
    for method in ("l2d_lora", "lora"):
        train(compose_config("train", TINY_RUN + [SMALL_REASONING_GYM, f"method={method}", "method.guidance=true"
                                                  if method == "l2d_lora" else "seed=0"], root / method))
    return root


def test_l2d_checkpoint_with_solvers_and_guidance(trained, tmp_path):
    export = trained / "l2d_lora" / "export"
    common = QUICK + ["task=reasoning_gym/chain_sum", "task.options.size=4", f"checkpoint={export}"]
    midpoint = evaluate(compose_config("evaluate", common + ["solver.levels=2"], tmp_path / "a"))
    assert midpoint["model"]["method"] == "l2d_lora" and midpoint["summary"]["mean_nfe"] == 3.0
    adaptive = evaluate(compose_config("evaluate", common + ["solver=bosh3", "solver.atol=1e-2", "solver.rtol=1e-2"],
                                       tmp_path / "b"))
    assert adaptive["decoding"]["solver"] == "bosh3" and adaptive["summary"]["mean_nfe"] > 4
    guided = evaluate(compose_config("evaluate", common + ["guidance=2.0", "solver.levels=2"], tmp_path / "c"))
    assert guided["records"][0]["guidance_class"] == "chain_sum"
    searched = evaluate(compose_config("evaluate", common + ["solver.levels=2", "token_search={hypotheses:2}"],
                                       tmp_path / "d"))
    assert searched["summary"]["mean_nfe"] <= 6.0


def test_runs_are_seeded_and_deterministic(trained, tmp_path):
    overrides = QUICK + ["task=reasoning_gym/chain_sum", "task.options.size=4",
                         f"checkpoint={trained / 'l2d_lora' / 'export'}", "solver.levels=2"]
    first = evaluate(compose_config("evaluate", overrides, tmp_path / "a"))
    again = evaluate(compose_config("evaluate", overrides, tmp_path / "b"))
    assert [r["generations"] for r in first["records"]] == [r["generations"] for r in again["records"]]


def test_lora_export_is_scored_as_a_plain_lm(trained, tmp_path):
    result = evaluate(compose_config("evaluate", QUICK + ["task=reasoning_gym/chain_sum", "task.options.size=4",
                                                          f"checkpoint={trained / 'lora' / 'export'}"], tmp_path))
    assert result["model"]["method"] == "lora" and result["summary"]["mean_nfe"] == 1.0


def test_checkpoint_for_another_base_is_refused(trained, tmp_path):
    cfg = compose_config("evaluate", QUICK + [f"checkpoint={trained / 'l2d_lora' / 'export'}",
                                              "base_model='tiny:layers=3'"], tmp_path)
    with pytest.raises(ValueError, match="was made for base model .*num_hidden_layers"):
        evaluate(cfg)


def test_unknown_task_lists_the_valid_ones(tmp_path):
    cfg = compose_config("evaluate", QUICK + ["task.name=gsm9k"], tmp_path)
    with pytest.raises(ValueError, match="unknown task 'gsm9k'; valid: gsm8k, gsm8k_heldout, math, humaneval"):
        evaluate(cfg)


def test_each_protocol_is_recorded_and_the_paper_s_scores_every_completion(trained, tmp_path):
    common = QUICK + ["task=reasoning_gym/chain_sum", "task.options.size=4",
                      f"checkpoint={trained / 'l2d_lora' / 'export'}", "solver.levels=2"]
    paper = evaluate(compose_config("evaluate", common, tmp_path / "paper"))  # the default protocol
    assert paper["protocol"] == {"name": "paper", "preset": "paper", "temperature": 1.0, "samples": 4,
                                 "x1_estimate": "sample", "x1_temperature": 0.0, "anneal_x1_temperature": True,
                                 "t_final": 1.0, "t_start": 0.0}
    records = paper["records"]
    assert all(len(r["generations"]) == len(r["passed"]) == 4 for r in records)
    completions = [p for r in records for p in r["passed"]]
    assert paper["summary"]["score"] == pytest.approx(sum(completions) / len(completions))
    assert paper["summary"]["n_completions"] == 8 and paper["summary"]["interval"] == "bootstrap over problems"
    assert len({g for r in records for g in r["generations"]}) > 2  # sampled: the completions differ

    greedy = evaluate(compose_config("evaluate", common + ["protocol=greedy", "solver.t_final=0.9"],
                                     tmp_path / "greedy"))
    assert greedy["protocol"] | {"t_final": None} == {**paper["protocol"], "name": "greedy", "preset": "greedy",
                                                      "temperature": 0.0, "samples": 1, "t_final": None}
    assert greedy["protocol"]["t_final"] == 0.9 and greedy["summary"]["interval"] == "wilson"
    saved = json.loads((tmp_path / "greedy" / "results.json").read_text())
    assert saved["protocol"] == greedy["protocol"]

    plain = evaluate(compose_config("evaluate", QUICK + ["task=reasoning_gym/chain_sum", "task.options.size=4",
                                                         "protocol=greedy"], tmp_path / "base"))
    assert plain["protocol"]["name"] == "greedy" and plain["protocol"]["t_final"] is None  # no diffusion to end


@pytest.mark.parametrize("task", ["gsm8k", "reasoning_gym/basic_arithmetic", "reasoning_gym/" + "x" * 60])
def test_the_printed_table_keeps_its_columns_apart_for_any_task_name(task, capsys):
    summary = {"score": 0.5, "ci95_low": 0.25, "ci95_high": 0.75, "n": 200, "n_unextracted": 3, "mean_nfe": 15.0,
               "pass@1": 0.5, "pass@10": 0.875}
    print_table({"task": task, "model": {"method": "l2d_lora"}, "summary": summary})
    header, row = capsys.readouterr().out.strip("\n").split("\n")
    assert re.split(" {2,}", header) == ["task", "method", "score %", "95% CI", "n", "no answer", "NFE", "pass@1",
                                          "pass@10"]
    assert re.split(" {2,}", row) == [task, "l2d_lora", "50.00", "25.0-75.0", "200", "3", "15.0", "50.0", "87.5"]
    assert len(header) == len(row) and header.index("method") == row.index("l2d_lora")  # each under its header
