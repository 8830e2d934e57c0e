import pytest

from l2d.tasks.summary import bootstrap_interval, paired, summarize, wilson_interval


def test_wilson_interval_known_values():
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def accuracy_result(correct: bool, extracted: bool = True) -> dict:
    return {"answer": "1" if extracted else None, "target": "1", "correct": correct, "extracted": extracted}


def test_accuracy_summary_counts_unextracted_as_wrong():
    results = [accuracy_result(True), accuracy_result(True), accuracy_result(False), accuracy_result(False, False)]
    summary = summarize(results)
    assert (summary["n"], summary["n_correct"], summary["n_unextracted"], summary["score"]) == (4, 2, 1, 0.5)
    assert (summary["ci95_low"], summary["ci95_high"]) == pytest.approx(wilson_interval(2, 4))
    assert summary["metric"] == "accuracy"


def test_pass_at_k_summary_averages_over_problems():
    results = [
        {"correct": True, "extracted": True, "passed": [True, False], "pass@1": 0.5},
        {"correct": False, "extracted": False, "passed": [False, False], "pass@1": 0.0},
        {"correct": True, "extracted": True, "passed": [True, True], "pass@1": 1.0},
    ]
    summary = summarize(results, metric="pass@k", ks=(1, 5))
    assert summary["score"] == summary["pass@1"] == pytest.approx(0.5)
    assert "pass@5" not in summary  # two samples per problem cannot give pass@5
    assert (summary["n_completions"], summary["n_correct"], summary["n_unextracted"]) == (6, 3, 1)
    assert summary["interval"] == "bootstrap over problems"
    assert (summary["ci95_low"], summary["ci95_high"]) == pytest.approx(bootstrap_interval([0.5, 0.0, 1.0]))


def test_empty_and_unknown_metric():
    assert summarize([])["score"] == 0.0
    with pytest.raises(ValueError, match="metric"):
        summarize([accuracy_result(True)], metric="bleu")


def test_wilson_interval_holds_the_proportion_at_the_ends():
    assert wilson_interval(0, 500)[0] == 0.0 and wilson_interval(500, 500)[1] == 1.0  # not 4e-19 inside
    for successes in range(0, 501, 25):
        low, high = wilson_interval(successes, 500)
        assert low <= successes / 500 <= high


def sampled_result(passed: list[bool]) -> dict:
    return {"answer": "1", "target": "1", "correct": passed[0], "extracted": True, "answers": ["1"] * len(passed),
            "passed": passed}


def test_several_completions_score_their_mean_with_an_interval_over_problems():
    # 100 problems, 4 completions each: half the problems always right, half always wrong.
    results = [sampled_result([i % 2 == 0] * 4) for i in range(100)]
    summary = summarize(results)
    assert (summary["n"], summary["n_completions"], summary["n_correct"], summary["score"]) == (100, 400, 200, 0.5)
    assert summary["interval"] == "bootstrap over problems"
    low, high = summary["ci95_low"], summary["ci95_high"]
    # The four completions of a problem agree, so the interval is that of 100 problems, not of 400 draws.
    per_completion, per_problem = wilson_interval(200, 400), wilson_interval(50, 100)
    assert high - low > 1.5 * (per_completion[1] - per_completion[0])
    assert high - low == pytest.approx(per_problem[1] - per_problem[0], rel=0.2)
    # A problem right in 1 of 4 completions counts a quarter.
    assert summarize([sampled_result([True, False, False, False])])["score"] == 0.25


def test_one_completion_per_problem_keeps_the_wilson_interval():
    summary = summarize([sampled_result([True]), sampled_result([False])])
    assert summary["interval"] == "wilson"
    assert (summary["ci95_low"], summary["ci95_high"]) == pytest.approx(wilson_interval(1, 2))


def test_paired_scores_count_problems_that_rose_and_fell():
    reference = {"a": 0.0, "b": 0.5, "c": 1.0, "d": 0.25}
    other = {"a": 0.75, "b": 0.5, "c": 0.5, "d": 1.0, "e": 1.0}  # "e" is not shared
    pair = paired(reference, other)
    assert (pair.problems, pair.gained, pair.lost) == (4, 2, 1)
    assert pair.change == pytest.approx((0.75 + 0 - 0.5 + 0.75) / 4)
    assert pair.p == pytest.approx(4 / 8)  # of the 8 sign flips of (+3, -2, +3)/4, 4 reach |total| >= 4/4
    many = paired({str(i): 0.0 for i in range(20)}, {str(i): 1.0 for i in range(20)})
    assert many.p == pytest.approx(2 / 2**20)
    assert (many.ci95_low, many.ci95_high) == (1.0, 1.0)


def test_the_paired_interval_resolves_a_change_the_two_scores_intervals_cannot():
    """33 problems gained and 14 lost of 500 (+3.8 points): the Wilson intervals of the two scores overlap, the
    interval of the change, over the same problems, lies above 0; a change that is noise has 0 inside."""
    reference = {str(i): float(i < 83) for i in range(500)}  # 69 right in both, 14 only here
    other = {str(i): float(i < 69 or 83 <= i < 116) for i in range(500)}  # 33 only here
    assert wilson_interval(102, 500)[0] < wilson_interval(83, 500)[1]
    pair = paired(reference, other)
    assert pair.change == pytest.approx(0.038) and pair.ci95_low < pair.change < pair.ci95_high
    assert 0.005 < pair.ci95_low and pair.ci95_high < 0.075
    noise = paired(reference, {str(i): float(i < 69 or 83 <= i < 97) for i in range(500)})  # +14 / -14
    assert noise.ci95_low < 0 < noise.ci95_high


def test_the_paired_p_is_the_exact_share_of_sign_flips_at_least_as_far_from_zero():
    """Against brute force over all 2^n flips of the score differences (quarters: four completions each)."""
    import itertools

    from l2d.tasks.summary import sign_flip_p

    differences = [1.0, 0.75, -0.25, 0.5, 0.0, -1.0, 0.25, 0.75, 0.5, -0.5, 1.0]
    moved = [d for d in differences if d]
    observed = abs(sum(moved))
    flips = list(itertools.product((1, -1), repeat=len(moved)))
    at_least = sum(abs(sum(s * d for s, d in zip(signs, moved, strict=True))) >= observed - 1e-9 for signs in flips)
    expected = at_least / len(flips)
    assert sign_flip_p(differences) == pytest.approx(expected)
    assert sign_flip_p([0.0, 0.0]) == 1.0 and sign_flip_p([]) == 1.0


def test_the_paired_p_weighs_how_far_each_score_moved():
    """10 problems gained a whole point, 12 lost a quarter: a sign test sees more losses than gains (p = 0.83);
    the change (+0.28 points per 22 problems) is clear once each problem counts as much as it moved."""
    from l2d.tasks.summary import sign_flip_p

    differences = [1.0] * 10 + [-0.25] * 12
    assert sign_flip_p(differences) < 0.05
    assert sign_flip_p([1.0] * 10 + [-1.0] * 12) > 0.5  # as many whole points lost: no evidence
