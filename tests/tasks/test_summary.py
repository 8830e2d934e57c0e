import pytest

from l2d.tasks.summary import summarize, wilson_interval


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
    assert (summary["n_correct"], summary["n_unextracted"]) == (2, 1)
    assert (summary["ci95_low"], summary["ci95_high"]) == pytest.approx(wilson_interval(1.5, 3))


def test_empty_and_unknown_metric():
    assert summarize([])["score"] == 0.0
    with pytest.raises(ValueError, match="metric"):
        summarize([accuracy_result(True)], metric="bleu")


def test_wilson_interval_holds_the_proportion_at_the_ends():
    assert wilson_interval(0, 500)[0] == 0.0 and wilson_interval(500, 500)[1] == 1.0  # not 4e-19 inside
    for successes in range(0, 501, 25):
        low, high = wilson_interval(successes, 500)
        assert low <= successes / 500 <= high
