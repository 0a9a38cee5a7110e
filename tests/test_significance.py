import pytest

from edge_collab.evaluation.significance import sign_test_p


def test_sign_test_matches_the_binomial_by_hand():
    assert sign_test_p(10, 0) == pytest.approx(2 / 1024)
    assert sign_test_p(0, 10) == sign_test_p(10, 0)
    # 7 of 9: P(X <= 2) = (1 + 9 + 36) / 512, doubled
    assert sign_test_p(7, 2) == pytest.approx(2 * 46 / 512)
    assert sign_test_p(5, 5) == 1.0 and sign_test_p(0, 0) == 1.0
