"""Small statistics for the paired-seed comparison of issue 13 (no scipy).

- `sign_test`: exact two-sided sign test of paired differences.
- `wilcoxon_signed_rank`: exact two-sided Wilcoxon signed-rank test (zero
  differences dropped; tied |differences| get mid-ranks and the exact null
  distribution of W+ is enumerated for that tie pattern).
- `min_two_sided_p(n)`: the smallest p-value either test can give with n
  non-zero differences (2 / 2^n: with 5 seeds no result can reach 0.05).
- `bootstrap_band`: mean over seeds with a percentile bootstrap band (seeds
  resampled with replacement, whole curves at once).
- `updates_to_reach`, `area_under_curve`: per-run curve summaries.

Everything is pure Python except the bootstrap (numpy).
"""

import math
from typing import Dict, List, Optional, Sequence

import numpy as np


def min_two_sided_p(n: int) -> float:
  """Smallest two-sided p of the exact sign / signed-rank test with n pairs."""
  return 1.0 if n < 1 else min(1.0, 2.0 / 2 ** n)


def _nonzero(differences: Sequence[float]) -> List[float]:
  values = [float(d) for d in differences]
  if not all(math.isfinite(d) for d in values):
    raise ValueError(f"paired_stats: differences must be finite, got {values}")
  return [d for d in values if d != 0]


def sign_test(differences: Sequence[float]) -> Dict[str, float]:
  """Exact two-sided sign test: under H0 each non-zero difference is + or -
  with probability 1/2. Zeros (ties) are dropped."""
  d = _nonzero(differences)
  n = len(d)
  positive = sum(1 for x in d if x > 0)
  negative = n - positive
  k = min(positive, negative)
  tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
  return {"n": n, "positive": positive, "negative": negative,
          "zeros": len(differences) - n,
          "p_value": 1.0 if n == 0 else min(1.0, 2 * tail)}


def _midranks(values: Sequence[float]) -> List[float]:
  """Ranks 1..n of `values`; tied values share the mean of their ranks."""
  order = sorted(range(len(values)), key=lambda i: values[i])
  ranks = [0.0] * len(values)
  i = 0
  while i < len(order):
    j = i
    while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
      j += 1
    for k in range(i, j + 1):
      ranks[order[k]] = (i + j) / 2 + 1
    i = j + 1
  return ranks


def wilcoxon_signed_rank(differences: Sequence[float]) -> Dict[str, float]:
  """Exact two-sided Wilcoxon signed-rank test of paired differences.

  W+ is the sum of the ranks of |d| over the positive d. Under H0 every sign
  pattern is equally likely, so the null distribution of W+ is the
  distribution of subset sums of the ranks; it is counted exactly (ranks
  doubled so that mid-ranks are integers). p = min(1, 2 min(P(W+ <= w),
  P(W+ >= w))). `statistic` is min(W+, W-), as in Wilcoxon tables.
  """
  d = _nonzero(differences)
  n = len(d)
  if n == 0:
    return {"n": 0, "zeros": len(differences), "w_plus": 0.0,
            "w_minus": 0.0, "statistic": 0.0, "p_value": 1.0}
  ranks = _midranks([abs(x) for x in d])
  doubled = [int(round(2 * r)) for r in ranks]
  counts = [0] * (sum(doubled) + 1)  # counts[s]: sign patterns with 2W+ = s.
  counts[0] = 1
  for r in doubled:
    for s in range(len(counts) - 1, r - 1, -1):
      counts[s] += counts[s - r]
  w2 = sum(r for r, x in zip(doubled, d) if x > 0)
  total = 2 ** n
  lower = sum(counts[:w2 + 1]) / total
  upper = sum(counts[w2:]) / total
  w_plus = w2 / 2
  w_minus = sum(doubled) / 2 - w_plus
  return {"n": n, "zeros": len(differences) - n, "w_plus": w_plus,
          "w_minus": w_minus, "statistic": min(w_plus, w_minus),
          "p_value": min(1.0, 2 * min(lower, upper))}


def bootstrap_band(curves, level: float = 0.95, draws: int = 2000,
                   seed: int = 0):
  """Mean over seeds and a percentile bootstrap band over seeds.

  `curves`: [seeds, points], NaN where a seed has no value at a point. Seeds
  are resampled with replacement `draws` times (the same resampled seeds at
  every point, so a band is a band of whole curves); at each point the band
  is the (1-level)/2 and (1+level)/2 quantiles of the resampled means (over
  the resampled seeds that have the point). One seed: the band is the curve.
  Returns (mean, low, high, n), each [points]; NaN where no seed has a value.
  """
  x = np.asarray(curves, dtype=float)
  if x.ndim != 2:
    raise ValueError(f"bootstrap_band: need [seeds, points], got {x.shape}")
  if not 0 < level < 1:
    raise ValueError(f"bootstrap_band: level must be in (0, 1), got {level}")
  present = np.isfinite(x)
  n = present.sum(axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean = np.where(n > 0, np.nansum(x, axis=0) / np.maximum(n, 1), np.nan)
  low, high = mean.copy(), mean.copy()
  seeds = x.shape[0]
  if seeds > 1 and draws > 0:
    rng = np.random.default_rng(seed)
    index = rng.integers(0, seeds, size=(draws, seeds))
    sample = x[index]  # [draws, seeds, points]
    counts = np.isfinite(sample).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
      means = np.nansum(sample, axis=1) / counts  # NaN where counts == 0.
    q = ((1 - level) / 2, (1 + level) / 2)
    for j in np.flatnonzero(n > 1):
      column = means[:, j]
      column = column[np.isfinite(column)]
      low[j], high[j] = np.quantile(column, q)
  return mean, low, high, n


def updates_to_reach(updates: Sequence[float], errors: Sequence[float],
                     threshold: float) -> Optional[int]:
  """First update whose error is at or below `threshold`; None: not reached."""
  for u, e in zip(updates, errors):
    if math.isfinite(e) and e <= threshold:
      return int(u)
  return None


def area_under_curve(updates: Sequence[float], values: Sequence[float]
                     ) -> float:
  """Trapezoid area of values over updates (units: value x updates)."""
  if len(updates) != len(values) or len(updates) < 2:
    raise ValueError("area_under_curve: need >= 2 points and equal lengths, "
                     f"got {len(updates)} updates, {len(values)} values.")
  if any(b <= a for a, b in zip(updates, updates[1:])):
    raise ValueError(f"area_under_curve: updates must increase: {updates}")
  if not all(math.isfinite(v) for v in values):
    raise ValueError(f"area_under_curve: non-finite values: {values}")
  return sum((u1 - u0) * (v0 + v1) / 2 for u0, u1, v0, v1 in
             zip(updates, updates[1:], values, values[1:]))


def median(values: Sequence[float]) -> float:
  """Median; +inf entries (e.g. 'not reached') sort last."""
  s = sorted(values)
  if not s:
    return math.nan
  mid = len(s) // 2
  if len(s) % 2:
    return s[mid]
  if math.isinf(s[mid]) or math.isinf(s[mid - 1]):
    return max(s[mid], s[mid - 1])
  return (s[mid - 1] + s[mid]) / 2
