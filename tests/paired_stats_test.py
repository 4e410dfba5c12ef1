"""benchmarks/paired_stats.py against hand-worked values and Wilcoxon tables."""

import itertools
import math

from absl.testing import absltest
import numpy as np

from benchmarks import paired_stats


class SignTestTest(absltest.TestCase):

  def test_five_of_five_gives_two_over_thirty_two(self):
    result = paired_stats.sign_test([-1, -2, -0.5, -3, -4])
    self.assertEqual((result["n"], result["positive"], result["negative"]),
                     (5, 0, 5))
    self.assertEqual(result["p_value"], 2 / 32)

  def test_one_of_ten_against(self):
    # P(X <= 1), X ~ Bin(10, 1/2) = 11/1024; two-sided 22/1024.
    result = paired_stats.sign_test([1] + [-1] * 9)
    self.assertAlmostEqual(result["p_value"], 22 / 1024, places=15)

  def test_two_of_eight_against(self):
    # (C(8,0) + C(8,1) + C(8,2)) / 256 = 37/256; two-sided 74/256.
    result = paired_stats.sign_test([1, 1, -1, -1, -1, -1, -1, -1])
    self.assertAlmostEqual(result["p_value"], 74 / 256, places=15)

  def test_zeros_are_dropped_and_balanced_is_one(self):
    result = paired_stats.sign_test([0, 0, 1, -1])
    self.assertEqual((result["n"], result["zeros"], result["p_value"]),
                     (2, 2, 1.0))
    self.assertEqual(paired_stats.sign_test([0, 0])["p_value"], 1.0)

  def test_rejects_nan(self):
    with self.assertRaisesRegex(ValueError, "finite"):
      paired_stats.sign_test([1.0, math.nan])


class WilcoxonTest(absltest.TestCase):

  def test_all_negative_n5(self):
    result = paired_stats.wilcoxon_signed_rank([-0.1, -0.2, -0.3, -0.4, -0.5])
    self.assertEqual((result["w_plus"], result["w_minus"]), (0.0, 15.0))
    self.assertEqual(result["statistic"], 0.0)
    self.assertEqual(result["p_value"], 2 / 32)  # Only all-minus has W+ = 0.

  def test_n6_one_small_positive(self):
    # Ranks 1..6, the positive has rank 1: W+ = 1. Subsets of {1..6} with
    # sum <= 1: {} and {1} -> 2/64; two-sided 4/64.
    d = [0.05, -0.2, -0.3, -0.4, -0.5, -0.6]
    result = paired_stats.wilcoxon_signed_rank(d)
    self.assertEqual(result["statistic"], 1.0)
    self.assertEqual(result["p_value"], 4 / 64)

  def test_n8_critical_value_of_tables(self):
    # Tables: n = 8, two-sided alpha = .05, critical W = 3. Subsets of {1..8}
    # with sum <= 3: {}, {1}, {2}, {3}, {1,2} -> 5/256; two-sided 10/256.
    d = [1, 2, -3, -4, -5, -6, -7, -8]  # W+ = 1 + 2 = 3.
    result = paired_stats.wilcoxon_signed_rank(d)
    self.assertEqual(result["statistic"], 3.0)
    self.assertAlmostEqual(result["p_value"], 10 / 256, places=15)

  def test_n10_critical_value_of_tables(self):
    # Tables: n = 10, P(W <= 8) = 0.0244 (25 subsets of {1..10} sum <= 8).
    d = [-1, -2, -5, 3, 4, 6, 7, 8, 9, 10]  # W- = 1 + 2 + 5 = 8.
    result = paired_stats.wilcoxon_signed_rank(d)
    self.assertEqual(result["statistic"], 8.0)
    self.assertAlmostEqual(result["p_value"], 50 / 1024, places=15)

  def test_ties_get_midranks_and_exact_enumeration(self):
    d = [1.0, -1.0, 2.0, 3.0]  # |d| ranks 1.5, 1.5, 3, 4; W+ = 8.5.
    result = paired_stats.wilcoxon_signed_rank(d)
    self.assertEqual(result["w_plus"], 8.5)
    # Brute force over the 16 sign patterns of the mid-ranks.
    ranks = (1.5, 1.5, 3, 4)
    sums = [sum(r for r, s in zip(ranks, signs) if s)
            for signs in itertools.product((0, 1), repeat=4)]
    upper = sum(s >= 8.5 for s in sums) / 16
    lower = sum(s <= 8.5 for s in sums) / 16
    self.assertAlmostEqual(result["p_value"], min(1, 2 * min(upper, lower)))
    self.assertAlmostEqual(result["p_value"], 6 / 16)

  def test_zeros_dropped(self):
    result = paired_stats.wilcoxon_signed_rank([0, -1, -2, -3, -4, -5])
    self.assertEqual((result["n"], result["zeros"]), (5, 1))
    self.assertEqual(result["p_value"], 2 / 32)

  def test_agrees_with_scipy_when_installed(self):
    try:
      from scipy import stats  # pylint: disable=g-import-not-at-top
    except ImportError:
      self.skipTest("scipy not installed (optional cross-check)")
    rng = np.random.default_rng(3)
    for n in (5, 7, 9, 12):
      d = rng.normal(0.3, 1, size=n)  # Continuous: no ties, no zeros.
      ours = paired_stats.wilcoxon_signed_rank(d)["p_value"]
      theirs = stats.wilcoxon(d, method="exact").pvalue
      self.assertAlmostEqual(ours, theirs, places=12)
      sign = paired_stats.sign_test(d)
      self.assertAlmostEqual(
          sign["p_value"],
          stats.binomtest(sign["positive"], n).pvalue, places=12)


class MinimumPTest(absltest.TestCase):

  def test_values(self):
    self.assertEqual(paired_stats.min_two_sided_p(5), 0.0625)
    self.assertEqual(paired_stats.min_two_sided_p(6), 0.03125)
    self.assertEqual(paired_stats.min_two_sided_p(1), 1.0)
    self.assertEqual(paired_stats.min_two_sided_p(0), 1.0)


class BootstrapBandTest(absltest.TestCase):

  def test_quantiles_of_a_known_bootstrap_distribution(self):
    # Ten seeds, one at 1: the resampled mean is K/10, K ~ Bin(10, 0.1).
    # P(K = 0) = 0.349 > 0.025 -> low 0; P(K <= 2) = 0.930 < 0.975 <=
    # P(K <= 3) = 0.987 -> high 0.3.
    curves = np.zeros((10, 2))
    curves[0, :] = 1.0
    mean, low, high, n = paired_stats.bootstrap_band(curves, draws=20000,
                                                     seed=0)
    np.testing.assert_allclose(mean, [0.1, 0.1])
    np.testing.assert_array_equal(low, [0.0, 0.0])
    np.testing.assert_array_equal(high, [0.3, 0.3])
    np.testing.assert_array_equal(n, [10, 10])

  def test_deterministic_given_the_seed(self):
    rng = np.random.default_rng(0)
    curves = rng.normal(size=(5, 7))
    a = paired_stats.bootstrap_band(curves, seed=4)
    b = paired_stats.bootstrap_band(curves, seed=4)
    c = paired_stats.bootstrap_band(curves, seed=5)
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x, y)
    self.assertFalse(np.array_equal(a[1], c[1]))
    self.assertTrue(np.all(a[1] <= a[0]) and np.all(a[0] <= a[2]))

  def test_missing_points_and_single_seed(self):
    curves = np.array([[0.5, 0.4, math.nan], [0.7, 0.2, math.nan],
                       [0.6, math.nan, math.nan]])
    mean, low, high, n = paired_stats.bootstrap_band(curves)
    np.testing.assert_allclose(mean[:2], [0.6, 0.3])
    np.testing.assert_array_equal(n, [3, 2, 0])
    self.assertTrue(np.isnan(mean[2]) and np.isnan(low[2]))
    single = paired_stats.bootstrap_band(curves[:1, :2])
    np.testing.assert_array_equal(single[1], [0.5, 0.4])
    np.testing.assert_array_equal(single[2], [0.5, 0.4])

  def test_narrower_level_gives_a_narrower_band(self):
    rng = np.random.default_rng(1)
    curves = rng.normal(size=(6, 4))
    _, low95, high95, _ = paired_stats.bootstrap_band(curves, 0.95)
    _, low50, high50, _ = paired_stats.bootstrap_band(curves, 0.5)
    self.assertTrue(np.all(high50 - low50 < high95 - low95))


class CurveSummaryTest(absltest.TestCase):

  def test_updates_to_reach_first_point_at_or_below(self):
    updates, errors = [500, 1000, 1500, 2000], [0.5, 0.2, 0.25, 0.1]
    self.assertEqual(paired_stats.updates_to_reach(updates, errors, 0.2), 1000)
    self.assertEqual(paired_stats.updates_to_reach(updates, errors, 0.1), 2000)
    self.assertIsNone(paired_stats.updates_to_reach(updates, errors, 0.05))
    self.assertEqual(paired_stats.updates_to_reach(
        [500, 1000], [math.nan, 0.05], 0.5), 1000)

  def test_area_is_the_trapezoid(self):
    # (500 * (0.6 + 0.4) / 2) + (1000 * (0.4 + 0.2) / 2) = 250 + 300.
    self.assertAlmostEqual(
        paired_stats.area_under_curve([500, 1000, 2000], [0.6, 0.4, 0.2]),
        550.0)
    with self.assertRaisesRegex(ValueError, "increase"):
      paired_stats.area_under_curve([500, 500], [0.1, 0.2])

  def test_median_with_not_reached(self):
    inf = math.inf
    self.assertEqual(paired_stats.median([3, 1, 2]), 2)
    self.assertEqual(paired_stats.median([4, 1, 2, 3]), 2.5)
    self.assertEqual(paired_stats.median([1000, inf, inf]), inf)
    self.assertEqual(paired_stats.median([1000, 2000, inf]), 2000)
    self.assertEqual(paired_stats.median([1000, inf]), inf)


if __name__ == "__main__":
  absltest.main()
