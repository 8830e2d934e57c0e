import pytest

from l2d.tasks import get_task
from l2d.tasks.math_answers import last_boxed, math_answers_equal, normalize_math_answer


def math_record(i: int, answer: str = "\\frac{3}{4}") -> dict:
    return {"problem": f"Problem {i}: compute the value.", "level": "Level 2", "type": "Algebra",
            "solution": f"We simplify step {i}. Thus the value is $\\boxed{{{answer}}}$."}


@pytest.fixture
def math_task(write_jsonl):
    test = write_jsonl("test.jsonl", [math_record(0), math_record(1, "10\\text{ cm}"), math_record(2, "x = 5")])
    train = write_jsonl("train.jsonl", [math_record(100 + i) for i in range(10)])
    return get_task("math", path=test, shots_path=train)


def test_problems_targets_and_equally_spaced_shots(math_task):
    problems = math_task.problems()
    assert [p["target"] for p in problems] == ["\\frac{3}{4}", "10", "5"]
    assert problems[0]["level"] == "Level 2" and problems[0]["guidance"] == "math"
    messages = math_task.messages(problems[0])
    shot_problems = [m["content"] for m in messages[:-1:2]]
    assert shot_problems == [math_record(100 + i)["problem"] for i in (0, 2, 4, 6, 8)]
    assert messages[1]["content"] == math_record(100)["solution"]


@pytest.mark.parametrize("completion, answer, correct", [
    ("so $\\boxed{\\dfrac{3}{4}}$", "\\frac{3}{4}", True),
    ("\\boxed{\\frac34}", "\\frac{3}{4}", True),
    ("The answer is \\boxed{0.75}.", "0.75", True),  # equal value
    ("first \\boxed{1} then \\boxed{\\frac{3}{4}}", "\\frac{3}{4}", True),  # the last box counts
    ("no box, the answer is 3/4 or 0.75", "0.75", True),  # the last number (paper's fallback)
    ("\\boxed{\\frac{4}{3}}", "\\frac{4}{3}", False),
    ("cut off \\boxed{\\frac{3}{", "3", False),  # unbalanced box: fall back to the last number
    ("I do not know.", None, False),
])
def test_extract_and_compare(math_task, completion, answer, correct):
    result = math_task.score(math_task.problems()[0], [completion])
    assert (result["answer"], result["correct"], result["extracted"]) == (answer, correct, answer is not None)


def test_units_and_equations_are_normalised(math_task):
    _, units, equation = math_task.problems()
    assert math_task.score(units, ["\\boxed{10}"])["correct"]
    assert math_task.score(equation, ["$x=5$ so \\boxed{x = 5}"])["correct"]
    assert not math_task.score(equation, ["\\boxed{6}"])["correct"]


@pytest.mark.parametrize("raw, normalised", [
    ("\\left( 1, 2 \\right)", "(1,2)"),
    ("90^\\circ", "90"),
    ("\\$1,000", "1000"),
    ("50\\%", "50"),
    ("\\sqrt2", "\\sqrt{2}"),
    ("1/2", "\\frac{1}{2}"),
    ("0.5", "\\frac{1}{2}"),
    (".5", "\\frac{1}{2}"),
    ("\\tfrac{1}{2}", "\\frac{1}{2}"),
])
def test_normalize_math_answer(raw, normalised):
    assert normalize_math_answer(raw) == normalised


def test_numeric_equality_is_exact_enough():
    assert math_answers_equal("2.50", "\\frac{5}{2}")
    assert math_answers_equal("-\\frac{1}{4}", "-0.25")
    assert not math_answers_equal("0.33", "\\frac{1}{3}")
    assert not math_answers_equal("\\sqrt{2}", "2")


def test_last_boxed():
    assert last_boxed("\\boxed{a{b}c} and \\fbox{d}") == "d"
    assert last_boxed("\\boxed{a{b}c}") == "a{b}c"
    assert last_boxed("$\\boxed 7$") == "7"
    assert last_boxed("nothing") is None
