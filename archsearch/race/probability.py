"""How likely each architecture is the best (or among the top k), now and after the race's remaining seeds.

Both come from draws of the mean mIoUs from their posterior (``MeanModel.draws``: a flat prior, a
multivariate Student-t around the estimates) and count, per architecture, the share of draws in which it
is the best or among the k best. ``best_probabilities`` is what the report states; ``leading_after_max``
is the race's futility rule (``race.decision``): the chance that an architecture would still lead once
every architecture had its seeds up to the race's ``max``. Seeded, so the same runs give the same figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archsearch.race.model import MeanModel

SAMPLES = 20000
DRAW_SEED = 0


@dataclass(frozen=True)
class BestProbabilities:
    """Per architecture (``Observations.arms`` order): P(best), P(top k); ``p_leaders``: P(the estimated top k
    are exactly the top k). NaN where the runs measure no spread (one seed each, or welch with one seed)."""

    p_best: np.ndarray
    p_top: np.ndarray
    p_leaders: float


def best_probabilities(model: MeanModel, top: int, *, samples: int = SAMPLES, seed: int = DRAW_SEED
                       ) -> BestProbabilities:
    return _shares(model.draws(samples, np.random.default_rng(seed)), model.means, top)


def leading_after_max(model: MeanModel, runs: np.ndarray, maximum: int, top: int, *, samples: int = SAMPLES,
                      seed: int = DRAW_SEED) -> np.ndarray:
    """Each architecture's P(top k) as the estimates would stand once every one had ``maximum`` seeds (the
    posterior predictive: an architecture with n of them moves by its posterior spread times sqrt(1 - n/max),
    which is sigma^2 (1/n - 1/max) in variance; one at ``maximum`` stays where it is). NaN where undefined."""
    draws = model.draws(samples, np.random.default_rng(seed))
    remaining = np.sqrt(np.clip(1 - np.asarray(runs, dtype=float) / maximum, 0.0, 1.0))
    return _shares(model.means + (draws - model.means) * remaining, model.means, top).p_top


def _shares(draws: np.ndarray, means: np.ndarray, top: int) -> BestProbabilities:
    samples, arms = draws.shape
    defined = ~np.isnan(draws).any(axis=0)
    p_best, p_top = np.full(arms, np.nan), np.full(arms, np.nan)
    if not defined.any():
        return BestProbabilities(p_best, p_top, math.nan)
    columns = np.flatnonzero(defined)
    k = min(top, len(columns))
    if k == 1:  # the common case, an argmax instead of a sort
        order = columns[np.argmax(draws[:, columns], axis=1)][:, None]
    else:
        order = columns[np.argsort(-draws[:, columns], axis=1, kind="stable")]
    p_best[columns] = np.bincount(order[:, 0], minlength=arms)[columns] / samples
    p_top[columns] = np.bincount(order[:, :k].ravel(), minlength=arms)[columns] / samples
    leaders = np.sort(np.argsort(-means, kind="stable")[:k])
    p_leaders = float((np.sort(order[:, :k], axis=1) == leaders).all(axis=1).mean()) if defined.all() else math.nan
    return BestProbabilities(p_best, p_top, p_leaders)
