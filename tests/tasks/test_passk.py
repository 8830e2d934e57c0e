import math

import pytest

from l2d.tasks.passk import pass_at_k


@pytest.mark.parametrize("n, c, k, expected", [
    (10, 3, 1, 0.3),
    (10, 3, 5, 1 - 21 / 252),  # C(7,5) = 21, C(10,5) = 252
    (10, 3, 10, 1.0),
    (10, 0, 5, 0.0),
    (5, 2, 2, 1 - 3 / 10),  # C(3,2) = 3, C(5,2) = 10
    (1, 1, 1, 1.0),
    (1, 0, 1, 0.0),
    (8, 4, 5, 1.0),  # n - c < k: every draw holds a correct sample
])
def test_hand_computed_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_matches_the_combinatorial_definition_and_stays_stable_for_large_n():
    for n, c, k in [(20, 7, 3), (50, 1, 10), (200, 13, 100)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), rel=1e-9)
    assert pass_at_k(10_000, 1, 1) == pytest.approx(1e-4)
    assert 0.0 < pass_at_k(100_000, 3, 50_000) <= 1.0


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, -1, 1), (5, 2, 6), (5, 2, 0)])
def test_invalid_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)
