import json

import pytest

from l2d.tasks import get_task
from l2d.tasks.reasoning_gym_tasks import EVAL_SEED


@pytest.fixture(scope="module")
def chain_sum():
    return get_task("reasoning_gym/chain_sum", size=20)


def test_generated_offline_with_a_fixed_eval_seed(chain_sum):
    problems = chain_sum.problems()
    assert len(problems) == 20 and problems[0]["id"] == "reasoning_gym/chain_sum/5"  # 0-4 are shots
    assert chain_sum.seed == EVAL_SEED != 0
    again = get_task("reasoning_gym/chain_sum", size=20).problems()
    assert [p["question"] for p in again] == [p["question"] for p in problems]
    other_seed = get_task("reasoning_gym/chain_sum", size=20, seed=EVAL_SEED + 1).problems()
    assert [p["question"] for p in other_seed] != [p["question"] for p in problems]


def test_attributes_and_shots(chain_sum):
    assert (chain_sum.name, chain_sum.category, chain_sum.guidance_name, chain_sum.metric) == (
        "reasoning_gym/chain_sum", "math", "chain_sum", "accuracy")
    problem = chain_sum.problems()[0]
    assert problem["guidance"] == "chain_sum"
    messages = chain_sum.messages(problem)
    assert len(messages) == 11 and messages[-1]["content"] == problem["question"]
    assert {m["content"] for m in messages[:-1:2]}.isdisjoint(p["question"] for p in chain_sum.problems())


def test_scored_by_the_datasets_own_verifier(chain_sum):
    problem = chain_sum.problems()[0]
    right = chain_sum.score(problem, [f"  {problem['target']}\n"])
    assert right["correct"] and right["reward"] == 1.0
    tagged = chain_sum.score(problem, [f"Let me add.<answer>{problem['target']}</answer>"])
    assert tagged["correct"] and tagged["answer"] == problem["target"]
    wrong = chain_sum.score(problem, [str(int(problem["target"]) + 1)])
    assert not wrong["correct"] and wrong["reward"] < 1.0
    empty = chain_sum.score(problem, [""])
    assert (empty["extracted"], empty["correct"], empty["reward"]) == (False, False, 0.0)


def test_every_completion_is_judged(chain_sum):
    problem = chain_sum.problems()[0]
    wrong = str(int(problem["target"]) + 1)
    result = chain_sum.score(problem, [wrong, problem["target"], "", problem["target"]])
    assert result["passed"] == [False, True, False, True]
    assert result["answers"] == [wrong, problem["target"], None, problem["target"]]
    assert result["rewards"][1] == result["rewards"][3] == 1.0 and result["rewards"][0] < 1.0
    assert not result["correct"] and result["answer"] == wrong  # the first completion's


def test_config_kwargs_reach_the_generator():
    task = get_task("reasoning_gym/basic_arithmetic", size=5, num_shots=0,
                    config={"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1})
    for problem in task.problems():
        assert problem["entry"]["metadata"]["num_terms"] == 2


def test_gsm_symbolic_shots_are_worked_solutions_as_in_training():
    task = get_task("reasoning_gym/gsm_symbolic", size=3, num_shots=1)
    problem = task.problems()[0]
    shot_answer = task.messages(problem)[1]["content"]
    assert "\n" in shot_answer and shot_answer.endswith("</answer>") and "####" not in shot_answer
    worked = f"First 2 + 2 = 4.\n<answer>{problem['target']}</answer>"
    assert task.score(problem, [worked])["correct"]
    assert not task.score(problem, ["First 2 + 2 = 4.\n<answer>-1</answer>"])["correct"]


def test_saved_entries_can_replace_generation(chain_sum, write_jsonl):
    entries = [p["entry"] for p in chain_sum.problems()[:4]]
    task = get_task("reasoning_gym/chain_sum", path=write_jsonl("rg.jsonl", json.loads(json.dumps(entries))),
                    num_shots=1)
    problems = task.problems()
    assert [p["question"] for p in problems] == [e["question"] for e in entries[1:]]
    assert task.score(problems[0], [problems[0]["target"]])["correct"]


def test_bad_dataset_or_training_seed():
    with pytest.raises(ValueError, match="chain_sum"):
        get_task("reasoning_gym/no_such_dataset")
    with pytest.raises(ValueError, match="seed 0"):
        get_task("reasoning_gym/chain_sum", seed=0)


def test_suffix_and_excluding_the_training_questions():
    import reasoning_gym

    config = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}  # a small space: seeds repeat
    training = {e["question"] for e in reasoning_gym.create_dataset("basic_arithmetic", seed=0, size=300, **config)}
    plain = get_task("reasoning_gym/basic_arithmetic", size=100, num_shots=0, config=config).problems()
    assert sum(p["question"] in training for p in plain) > 0  # what `exclude` is for
    task = get_task("reasoning_gym/basic_arithmetic", size=100, num_shots=0, config=config,
                    prompt_suffix=" Answer with the number only.", exclude={"seed": 0, "size": 300})
    problems = task.problems()
    assert len(problems) == 100
    assert all(p["question"].endswith(" Answer with the number only.") for p in problems)
    assert not any(p["question"].removesuffix(" Answer with the number only.") in training for p in problems)
    with pytest.raises(ValueError, match="exclude must be"):
        get_task("reasoning_gym/basic_arithmetic", exclude={"seed": 0})
