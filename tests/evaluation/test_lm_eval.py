"""The lm-evaluation-harness model `l2d`: a task of our own (a YAML over local JSONL files) scored by
lm-eval and by `python -m l2d.evaluate` on the same problems gives the same generations and score."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from l2d import L2DConfig, L2DModel
from l2d.evaluate import evaluate
from l2d.lm_eval import L2DLM
from l2d.model.tiny import tiny_model
from tests.compose import compose_config

TASK = "l2d_sums"
# GSM8K's schema and answer rule ("#### N"), and lm-eval's own GSM8K scorer (regex, then exact match).
TASK_YAML = """\
task: l2d_sums
dataset_path: json
dataset_kwargs:
  data_files:
    train: {train}
    test: {test}
output_type: generate_until
training_split: train
fewshot_split: train
test_split: test
num_fewshot: 2
fewshot_config:
  sampler: first_n
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  do_sample: false
  max_gen_toks: 12
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "####\\\\s*\\\\$?\\\\s*(-?[\\\\d,]*\\\\.?\\\\d+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    regexes_to_ignore: [",", "\\\\$", "(?s).*#### "]
metadata:
  version: 1.0
"""


def sums(pairs):
    return "".join(json.dumps({"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}\n#### {a + b}"})
                   + "\n" for a, b in pairs)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("task")
    (root / "train.jsonl").write_text(sums([(1, 2), (3, 4), (5, 6)]))
    (root / "test.jsonl").write_text(sums([(2, 2), (7, 1), (10, 15), (4, 40), (9, 9)]))
    (root / f"{TASK}.yaml").write_text(TASK_YAML.format(train=root / "train.jsonl", test=root / "test.jsonl"))
    return root


def ours(task_dir, tmp_path, *overrides):
    """Our harness on the same files: GSM8K's task over the whole test file, shots from train."""
    result = evaluate(compose_config("evaluate", [
        "model=tiny", "task=gsm8k", f"task.options.path={task_dir / 'test.jsonl'}",
        f"++task.options.shots_path={task_dir / 'train.jsonl'}", "++task.options.num_shots=2", "max_new_tokens=12",
        "batch_size=2", "progress=false", "samples=1", *overrides], tmp_path))
    return [r["generations"][0] for r in result["records"]], result["summary"]["score"]


def theirs(task_dir, model_args: dict):
    results = simple_evaluate(model="l2d", model_args={"model": "tiny", **model_args}, tasks=[TASK], batch_size=2,
                              task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
                              apply_chat_template=True, fewshot_as_multiturn=True, log_samples=True)
    samples = sorted(results["samples"][TASK], key=lambda s: s["doc_id"])
    return [s["resps"][0][0] for s in samples], results["results"][TASK]["exact_match,strict-match"]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_l2d_checkpoint_same_generations_and_score_as_our_harness(export, task_dir, tmp_path, temperature):
    mine = ours(task_dir, tmp_path, f"checkpoint={export}", "solver.levels=3", f"temperature={temperature}")
    # temperature=None follows the task (greedy: do_sample false); a number overrides it, as in l2d.evaluate
    args = {"checkpoint": str(export), "levels": 3, "temperature": None if temperature == 0 else temperature}
    generations, score = theirs(task_dir, args)
    assert len(generations) == 5 and all(generations)
    assert generations == mine[0]
    assert score == mine[1]


def test_base_model_alone_when_no_checkpoint(task_dir, tmp_path):
    mine = ours(task_dir, tmp_path, "temperature=0")
    lm = L2DLM(model="tiny")
    assert lm.info["method"] == "base" and lm.decoding.decode == {}
    generations, score = theirs(task_dir, {})
    assert generations == mine[0] and score == mine[1]


def test_every_decoding_option_is_a_model_argument(export):
    lm = L2DLM(checkpoint=str(export), model="tiny", solver="dopri5", atol=1e-2, rtol=0.5, t_final=0.9, t_start=0.1,
               x1_estimate="expectation", x1_temperature=0.5, anneal_x1_temperature=False, compile="eager",
               temperature=0.7, max_new_tokens=5, token_search='{"hypotheses": 2}', batch_size="4", seed=3,
               device="cuda:0" if not torch.cuda.is_available() else "cpu")
    assert lm.decoding.decode == {"solver": "dopri5", "levels": 8, "t_final": 0.9, "t_start": 0.1,
                                  "x1_estimate": "expectation",
                                  "x1_temperature": 0.5, "anneal_x1_temperature": False, "atol": 1e-2, "rtol": 0.5,
                                  "compile": "eager"}
    decoding = lm.decoding
    assert (decoding.temperature, decoding.max_new_tokens, decoding.token_search) == (0.7, 5, {"hypotheses": 2})
    assert (lm.batch_size, lm.seed, lm.device.type) == (4, 3, "cpu")
    assert lm.get_model_info()["l2d"]["method"] == "l2d_lora"


def test_a_protocol_sets_the_emitted_token_and_x1_under_the_explicit_arguments(export):
    greedy = L2DLM(checkpoint=str(export), model="tiny", protocol="greedy", t_final=0.9)
    assert greedy.decoding.temperature == 0.0
    assert greedy.decoding.decode == {"solver": "midpoint", "levels": 8, "t_final": 0.9, "t_start": 0.0,
                                      "x1_estimate": "sample", "x1_temperature": 0.0, "anneal_x1_temperature": True,
                                      "atol": 1e-3, "rtol": 1e-3, "compile": None}
    paper = L2DLM(checkpoint=str(export), model="tiny", protocol="paper", solver="dopri5", temperature=0.5)
    assert paper.decoding.temperature == 0.5 and paper.decoding.decode["t_final"] == 0.99  # the solver's own end
    with pytest.raises(ValueError, match="protocol='beam' is not a config of conf/protocol/; valid: greedy, paper"):
        L2DLM(model="tiny", protocol="beam")


def test_bad_arguments_get_one_clear_error(export):
    with pytest.raises(TypeError, match="unknown l2d model argument.*steps; valid: checkpoint, model"):
        L2DLM(model="tiny", steps=3)
    with pytest.raises(ValueError, match="solver='heun' is not a config of conf/solver/; valid: adaptive_heun"):
        L2DLM(model="tiny", solver="heun")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 'auto'"):
        L2DLM(model="tiny", batch_size="auto")
    with pytest.raises(ValueError, match="guidance needs guidance_class"):
        classes = tiny_model()[0]
        path = export.parent / "classes"
        L2DModel(classes, L2DConfig(dim=16, lora_rank=4, num_classes=2, class_names=["math", "code"])).save_pretrained(
            path)
        L2DLM(checkpoint=str(path), model="tiny", guidance=2.0)


def test_likelihood_requests_name_the_generative_variants():
    lm = L2DLM(model="tiny")
    for method in (lm.loglikelihood, lm.loglikelihood_rolling):
        with pytest.raises(NotImplementedError, match="only generates.*e.g. gsm8k, .*mmlu_generative"):
            method([])


@pytest.mark.slow  # lm-eval's command line indexes its ~10,000 task files first (half a minute)
def test_lm_eval_command_line(export, task_dir, tmp_path):
    """`python -m l2d.lm_eval` is lm-eval's own command line with the model registered."""
    command = [sys.executable, "-m", "l2d.lm_eval", "--model", "l2d", "--model_args",
               f"checkpoint={export},model=tiny,solver=midpoint,levels=3", "--tasks", TASK, "--include_path",
               str(task_dir), "--apply_chat_template", "--fewshot_as_multiturn", "--batch_size", "2", "--device",
               "cpu", "--output_path", str(tmp_path / "out")]
    run = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
                         env={**os.environ, "TQDM_DISABLE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    [written] = list((tmp_path / "out").rglob("results_*.json"))
    results = json.loads(written.read_text())
    assert results["config"]["model"] == "l2d" and results["config"]["l2d"]["method"] == "l2d_lora"
    assert TASK in results["results"] and "l2d_sums" in run.stdout
