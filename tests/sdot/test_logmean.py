"""The log-mean and its derivatives: one home beside the rate laws (sdot.rates), the old import paths, closed forms."""

import numpy as np
import pytest

import sdot.grid
import sdot.hamiltonian
import sdot.rates
import sdot.rates as lm


def test_old_import_paths_are_the_same_functions():
    assert sdot.logmean is lm.logmean
    assert sdot.grid.logmean_with_derivatives is lm.logmean_with_derivatives
    assert sdot.grid.logmean_derivatives is lm.logmean_derivatives
    assert sdot.hamiltonian.logmean_second_derivatives is lm.logmean_second_derivatives


def test_closed_forms():
    # Lambda(a, b) = (a - b) / log(a / b); Lambda(a, a) = a; 1-homogeneous; Lambda(1, e) = e - 1
    a, b = np.array([1.0, 2.0, 3.0, 0.5]), np.array([np.e, 2.0, 1.0, 0.0])
    np.testing.assert_allclose(lm.logmean(a, b), [np.e - 1, 2.0, 2 / np.log(3), 0.0], rtol=1e-14)
    # at a = b (the series branch): both partials 1/2; second partials lambda''(1) / a = -1/(6a) times (1, -1, 1)
    L, da, db = lm.logmean_with_derivatives(np.array([2.0]), np.array([2.0]))
    assert (L[0], da[0], db[0]) == pytest.approx((2.0, 0.5, 0.5), abs=1e-15)
    daa, dab, dbb = lm.logmean_second_derivatives(np.array([2.0]), np.array([2.0]))
    assert (daa[0], dab[0], dbb[0]) == pytest.approx((-1 / 12, 1 / 12, -1 / 12), abs=1e-15)
    # away from the diagonal: d/db Lambda(1, b) = (log b - 1 + 1/b) / log(b)^2
    b = np.array([np.e])
    assert lm.logmean_derivatives(np.array([1.0]), b)[1][0] == pytest.approx(1 / np.e, rel=1e-13)
