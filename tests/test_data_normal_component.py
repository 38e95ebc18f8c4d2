"""The measured rate at which the Bayes-optimal gradient's normal component vanishes."""

import pytest

from manifold_lab.data.normal_component import normal_component_table


def test_normal_fraction_falls_like_sigma_squared():
    # The table reported for issue 3: sigma from 0.3 to 0.001 on a 2-sphere in R^64.
    table = normal_component_table()
    # The fitted slope of log(normal fraction) against log(sigma) over the four
    # smallest sigma is 2 + O(sigma^2) (normal_component's docstring): 2 +- 0.01.
    assert table.slope == pytest.approx(2.0, abs=0.01)
    assert all(a > b for a, b in zip(table.mean, table.mean[1:]))  # shrinks monotonically
    # The leading-order formula holds to O(sigma^2) relative at the small levels.
    for s, m, p in zip(table.noise_stds, table.mean, table.predicted_mean):
        if s <= 0.01:
            assert m == pytest.approx(p, rel=1e-3)
    assert max(table.orthogonal_max) < 1e-12  # no component outside the sphere's flat
    assert "slope" in table.format()
