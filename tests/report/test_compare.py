"""python -m l2d.report.compare: paired comparisons of scorings of the same problems, and its bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from l2d.report.compare import compare, main


@pytest.fixture
def scoring(tmp_path):
    """scoring(name, right) -> the path of a results.json whose problem i is right when i is in `right` (of 10)."""
    def write(name: str, right: set[int]) -> str:
        path = tmp_path / name / "results.json"
        path.parent.mkdir()
        records = [{"id": i, "correct": i in right} for i in range(10)]
        score = len(right) / 10
        path.write_text(json.dumps({"records": records,
                                    "summary": {"score": score, "ci95_low": score / 2, "ci95_high": score}}))
        return str(path)
    return write


def test_counts_the_problems_gained_and_lost_against_the_reference(scoring):
    reference = scoring("reference", {0, 1, 2})
    other = scoring("other", {0, 3, 4, 5, 6, 7})  # gains 3-7, loses 1 and 2
    lines = compare(reference, other)
    assert lines[0] == f"{reference}: 30.0% (15.0-30.0)"
    assert lines[1].startswith(f"{other}: 60.0% (30.0-60.0); against the reference on 10 problems +5 / -2, "
                               "+30.0 points")
    assert lines[1].endswith("p = 0.45")  # McNemar's exact test: 2 * P(X <= 2), X ~ Binomial(7, 1/2) = 29/64


def test_a_sum_of_scorings_is_their_mean_and_two_sums_are_compared_run_by_run(scoring):
    first = "+".join([scoring("a1", {0, 1}), scoring("a2", {0, 1, 2, 3})])
    second = "+".join([scoring("b1", {0, 1, 2}), scoring("b2", {0, 1, 2, 3, 4, 5})])
    lines = compare(first, second)
    assert lines[0].startswith(f"{first}: 30.0% (") and lines[0].endswith("[mean of 20.0 / 40.0]")
    assert "[mean of 30.0 / 60.0]" in lines[1] and "+3 / -0, +15.0 points" in lines[1]
    assert "run by run +10.0 / +20.0, t-test over the runs p = " in lines[1]


def test_a_missing_file_ends_the_run_with_one_line_naming_it(tmp_path, scoring):
    missing = tmp_path / "no_run" / "results.json"
    with pytest.raises(SystemExit) as exit_info:
        main([scoring("reference", {0}), str(missing)])
    assert exit_info.value.code == (f"python -m l2d.report.compare: error: {missing}: no such file "
                                    "(a results.json of python -m l2d.evaluate)")


@pytest.mark.parametrize("text, says", [("{not json", "not JSON"),
                                        ('{"summary": {}}', "not a results.json of python -m l2d.evaluate")])
def test_a_file_that_is_not_a_results_json_is_named(tmp_path, scoring, text, says):
    foreign = tmp_path / "metrics.json"
    foreign.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main([str(foreign), scoring("other", {0})])
    assert exit_info.value.code.startswith(f"python -m l2d.report.compare: error: {foreign}: {says}")


def test_scorings_that_share_no_problem_have_no_mean(tmp_path, scoring):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"records": [{"id": "x", "correct": True}], "summary": {}}))
    with pytest.raises(SystemExit, match="share no problem"):
        main([scoring("reference", {0}), f"{scoring('first', {1})}+{other}"])


def test_runs_as_a_module_and_says_how_without_two_arguments(scoring):
    reference, other = scoring("reference", {0}), scoring("other", {0, 1})
    done = subprocess.run([sys.executable, "-m", "l2d.report.compare", reference, other],
                          capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[1].startswith(f"{other}: 20.0% (10.0-20.0); against the reference on 10 "
                                                  "problems +1 / -0")
    usage = subprocess.run([sys.executable, "-m", "l2d.report.compare", reference], capture_output=True, text=True)
    assert usage.returncode == 1 and usage.stderr.startswith("Paired comparisons of scorings of the same problems")
