"""``behaviour-v2``: size-free behaviour (season shape, trend, volatility, assortment, activity).

Every volume is first divided by the shop's own mean monthly volume (``r = q / mean q``), so multiplying a
shop's sales by any factor leaves every feature unchanged: shop size cannot drive the representation.
Levels are compared on ``z = log(max(r, 0.05))`` (log: multiplicative effects become additive; the floor keeps a
zero month finite at about -3 without biasing ordinary months). Every value is finite and bounded; edge cases
are defined (see ``columns``).
"""

from __future__ import annotations

import math

import numpy as np

from shared.features.base import FeatureSet
from shared.features.monthly import ShopMonths
from shared.features.panel import Panel

FLOOR = 0.05  # relative-volume floor before the log
TREND_LIMIT = 3.0  # |log growth per year| cap (x20 per year)
VOLATILITY_LIMIT = 5.0
MONTHS = tuple(range(1, 13))
LN12 = math.log(12)

DESCRIPTIONS: dict[str, str] = {
    **{
        f"season_share_{m}": f"share of a typical year's volume sold in month {m}: mean relative volume of the month "
        "over the shop's years, normalised to sum 1 over the 12 months (0 for a month never active, all 0 when the "
        "shop never sold); the season's shape, not its size"
        for m in MONTHS
    },
    "season_entropy": "entropy of the 12 shares / ln 12, in [0, 1]: 1 = flat year, low = concentrated season",
    "sales_trend": "yearly log growth of volume: OLS slope of z on time with calendar-month fixed effects (the "
    "season does not masquerade as trend; gaps and partial years are fine), clipped to +-3; 0 when no calendar "
    "month was seen in two different years",
    "assortment_trend": "the same slope for relative unique products: is the range widening or narrowing",
    "sales_volatility": "residual std of z after the month effects and the trend (dof-corrected), clipped to "
    "[0, 5]: irregularity that neither season nor trend explains; 0 without residual degrees of freedom",
    "assortment_breadth": "ln(1 + mean unique products per active month): how wide the range is, a behaviour "
    "(a wide-range small shop and a narrow-range big one differ here, not in volume)",
    "activity_ratio": "active months / months spanned from the first to the last active month, in (0, 1]",
}
COLUMNS = tuple(DESCRIPTIONS)


def _clip(x: np.ndarray | float, low: float, high: float) -> np.ndarray:
    return np.minimum(np.maximum(x, low), high)


def _shares(month_avg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-normalised seasonal profiles and their entropy / ln 12 (both 0 for an all-zero profile)."""
    total = month_avg.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, month_avg / total, 0.0)
        ent = -np.where(share > 0, share * np.log(share), 0.0).sum(axis=1) / LN12
    return share, ent


def _relative_log(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(np.maximum(np.where(mean > 0, x / mean, 0.0), FLOOR))


def shrink_season(month_avg: np.ndarray, season_prior: float | None, volatility: np.ndarray | float,
                  month_w: np.ndarray, month_w2: np.ndarray) -> np.ndarray:
    """Each calendar month's average relative volume shrunk towards the flat year (1) by its reliability
    ``f = tau^2 / (tau^2 + sigma^2 / n_eff)`` (empirical-Bayes shrinkage of a noisy mean: ``tau`` =
    ``season_prior``, the typical size of a month effect; ``sigma`` the shop's volatility, the noise of one month;
    ``n_eff = (sum w)^2 / sum w^2`` the month's effective count, 0 for a month never seen, which becomes 1).
    A steady shop seen every year keeps its season; a volatile or sparse shop's chance peaks fade.
    Arrays are (shops, 12) with one volatility per shop, or (12,) with one number; no prior: ``month_avg``."""
    if season_prior is None:
        return month_avg
    sigma2 = np.asarray(volatility, dtype=np.float64) ** 2
    sigma2 = sigma2[:, None] if sigma2.ndim else sigma2
    seen = month_w2 > 0
    n_eff = np.where(seen, month_w * month_w / np.where(seen, month_w2, 1.0), 0.0)
    tau2_n = season_prior * season_prior * n_eff
    f = np.where(seen, tau2_n / np.where(seen, tau2_n + sigma2, 1.0), 0.0)
    return 1.0 + f * (month_avg - 1.0)


def behaviour_batch(panel: Panel, w: np.ndarray, span_weight: np.ndarray,
                    season_prior: float | None = None) -> np.ndarray:
    """The behaviour columns of every shop of a non-empty panel, each row weighted by ``w`` (> 0).

    Every mean is a ``w``-weighted mean, the month effects and the trend a ``w``-weighted least-squares fit, the
    volatility a ``w``-weighted residual variance with the unweighted dof correction, the activity the active
    weight over ``span_weight`` (per shop: the weight the months from the first to the last active month would
    carry, all active). Unit weights and ``span_weight`` = months spanned give ``behaviour-v2`` exactly. With a
    ``season_prior`` each month's average relative volume is shrunk towards the flat year by its
    :func:`shrink_season` before the shares are taken.
    """
    n, code, counts = panel.n_shops, panel.code, panel.counts
    key = panel.shop_month_key()
    month_n = np.bincount(key, minlength=12 * n)
    month_w = np.bincount(key, w, 12 * n)
    t = (panel.period - panel.period[panel.starts][code]) / 12.0  # years since the shop's first month
    sw = panel.shop_sum(w)
    mean_q = panel.shop_sum(w * panel.qty) / sw
    mean_u = panel.shop_sum(w * panel.uniq) / sw
    rel = np.where(mean_q[code] > 0, panel.qty / np.where(mean_q > 0, mean_q, 1.0)[code], 0.0)

    def month_demeaned(x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return x - (np.bincount(key, w * x, 12 * n) / month_w)[key]

    dt = month_demeaned(t)
    sxx = panel.shop_sum(w * dt * dt)
    n_seen = (month_n.reshape(n, 12) > 0).sum(axis=1)
    estimable = counts > n_seen  # some calendar month seen in two different years
    out = []
    resid_ss = None
    for x, mean in ((panel.qty, mean_q), (panel.uniq, mean_u)):
        dz = month_demeaned(_relative_log(x, mean[code]))
        slope = np.where(estimable, panel.shop_sum(w * dt * dz) / np.where(estimable, sxx, 1.0), 0.0)
        out.append(slope)
        if resid_ss is None:
            resid_ss = panel.shop_sum(w * (dz - slope[code] * dt) ** 2)
    dof = counts - n_seen - estimable
    vol = _clip(np.where(dof > 0, np.sqrt(resid_ss * (counts / sw) / np.maximum(dof, 1)), 0.0), 0.0, VOLATILITY_LIMIT)
    with np.errstate(invalid="ignore", divide="ignore"):
        month_avg = np.where(month_n > 0, np.bincount(key, w * rel, 12 * n) / month_w, 0.0).reshape(n, 12)
    shrunk = shrink_season(month_avg, season_prior, vol, month_w.reshape(n, 12),
                           np.bincount(key, w * w, 12 * n).reshape(n, 12))
    share, ent = _shares(np.where(mean_q[:, None] > 0, shrunk, 0.0))  # a shop that never sold has no season
    return np.column_stack(
        [
            share,
            ent,
            _clip(out[0], -TREND_LIMIT, TREND_LIMIT),
            _clip(out[1], -TREND_LIMIT, TREND_LIMIT),
            vol,
            np.log1p(mean_u),
            np.minimum(sw / span_weight, 1.0),
        ]
    )


def behaviour_one(shop: ShopMonths, w: np.ndarray, span_weight: float, season_prior: float | None = None) -> np.ndarray:
    """``behaviour_batch`` for one shop (``w`` per month in ``shop``'s order; ``span_weight`` a number)."""
    n, m0, q, u = len(shop), shop.month - 1, shop.sales_qty, shop.unique_products
    month_n = np.bincount(m0, minlength=12)
    safe_w = np.bincount(m0, w, 12) + (month_n == 0)  # a month never seen: 0 / 1
    n_seen = np.count_nonzero(month_n)
    sw = float(w.sum())
    mean_q, mean_u = float(w @ q) / sw, float(w @ u) / sw
    rel_q = q / mean_q if mean_q > 0 else np.zeros(n)

    def month_demeaned(x: np.ndarray) -> np.ndarray:
        return x - (np.bincount(m0, w * x, 12) / safe_w)[m0]

    dt = month_demeaned((shop.period - shop.period[0]) / 12.0)
    w_dt = w * dt
    sxx = float(w_dt @ dt)
    estimable = n > n_seen
    dz_q = month_demeaned(np.log(np.maximum(rel_q, FLOOR)))
    dz_u = month_demeaned(np.log(np.maximum(u / mean_u if mean_u > 0 else np.zeros(n), FLOOR)))
    slope_q = float(w_dt @ dz_q) / sxx if estimable else 0.0
    slope_u = float(w_dt @ dz_u) / sxx if estimable else 0.0
    dof = n - n_seen - int(estimable)
    resid = dz_q - slope_q * dt
    vol = min(math.sqrt(float((w * resid) @ resid) * (n / sw) / dof) if dof > 0 else 0.0, VOLATILITY_LIMIT)
    month_avg = np.bincount(m0, w * rel_q, 12) / safe_w
    if mean_q > 0:
        month_avg = shrink_season(month_avg, season_prior, vol, np.bincount(m0, w, 12), np.bincount(m0, w * w, 12))
    total = month_avg.sum()
    share = month_avg / total if total > 0 else month_avg  # all 0 when the shop never sold
    nonzero = share[share > 0]
    ent = -(nonzero @ np.log(nonzero)) / LN12
    tail = (
        ent,
        min(max(slope_q, -TREND_LIMIT), TREND_LIMIT),
        min(max(slope_u, -TREND_LIMIT), TREND_LIMIT),
        vol,
        math.log1p(mean_u),
        min(sw / span_weight, 1.0),
    )
    return np.concatenate((share, tail))


class BehaviourV2(FeatureSet):
    """Size-free behaviour: 12 seasonal shares, season entropy, sales and assortment trend, volatility,
    assortment breadth, activity ratio (18 columns), every month of the shop's history weighted alike."""

    name = "behaviour-v2"
    version = 2
    columns = COLUMNS
    descriptions = DESCRIPTIONS

    def _batch(self, panel: Panel) -> np.ndarray:
        spanned = panel.period[panel.starts + panel.counts - 1] - panel.period[panel.starts] + 1
        return behaviour_batch(panel, np.ones(len(panel.code)), spanned.astype(np.float64))

    def compute_one(self, shop: ShopMonths) -> np.ndarray:
        return behaviour_one(shop, np.ones(len(shop)), float(shop.period[-1] - shop.period[0] + 1))
