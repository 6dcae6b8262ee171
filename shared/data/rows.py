"""Sales rows of a block of shops: monthly totals from the plan, split over each shop's product catalogue."""

from __future__ import annotations

import numpy as np

from shared.data.archetypes import MAX_BREADTH
from shared.data.plan import ShopPlan

PRODUCTS = 2000  # size of the product universe (ids P00001..P02000)
CATALOGUE = int(np.ceil(MAX_BREADTH * 1.5)) + 4  # product slots per shop (the widest shop plus room to grow)
_PRODUCT_CDF = np.cumsum(np.arange(1, PRODUCTS + 1) ** -0.7) / np.sum(np.arange(1, PRODUCTS + 1) ** -0.7)
_SLOT_WEIGHT = np.arange(1, CATALOGUE + 1) ** -0.9  # a shop's own best sellers first
SPLIT_SIGMA = 0.35  # month-to-month noise of a product's share of its shop's month


def catalogue_size(breadth_scale: float = 1.0) -> int:
    """Product slots per shop for a world whose assortments are ``breadth_scale`` times the default."""
    return CATALOGUE if breadth_scale == 1.0 else int(np.ceil(MAX_BREADTH * breadth_scale * 1.5)) + 4


def catalogues(rng: np.random.Generator, shops: int, size: int = CATALOGUE) -> np.ndarray:
    """(shops, size) distinct product numbers (0-based) per shop; popular products (Zipf-like) more often.

    Draws 3 x size products with replacement and keeps the first ``size`` distinct ones in draw order.
    """
    out = np.empty((shops, size), dtype=np.int64)
    todo = np.arange(shops)
    while todo.size:  # a row with too few distinct draws (practically never) is drawn again
        cand = np.searchsorted(_PRODUCT_CDF, rng.random((todo.size, 3 * size)), side="right")
        order = np.argsort(cand, axis=1, kind="stable")
        ranked = np.take_along_axis(cand, order, axis=1)
        first = np.ones(ranked.shape, dtype=bool)
        first[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
        keep = np.empty_like(first)
        np.put_along_axis(keep, order, first, axis=1)
        keep &= np.cumsum(keep, axis=1) <= size
        full = keep.sum(axis=1) == size
        out[todo[full]] = cand[full][keep[full]].reshape(-1, size)
        todo = todo[~full]
    return np.minimum(out, PRODUCTS - 1)


def block_rows(rng: np.random.Generator, plan: ShopPlan, months: int,
               catalogue: int = CATALOGUE) -> dict[str, np.ndarray]:
    """Rows of the plan's shops ordered by shop and month: shop (index into the plan), product (0-based
    number), t (month index) and qty (integer units, at least 1)."""
    n = plan.shops
    t = np.arange(months)[None, :]
    after = t >= plan.change_t[:, None]
    rel = t - plan.start_t[:, None]  # months since opening
    rel_change = np.maximum(plan.change_t - plan.start_t, 0)[:, None]
    before_rel, after_rel = np.minimum(rel, rel_change), np.maximum(rel - rel_change, 0)

    b, a = plan.before, plan.after
    in_tenure = (rel >= 0) & (t < plan.end_t[:, None]) & ~((t >= plan.gap_start[:, None]) & (t < plan.gap_end[:, None]))
    activity = np.where(after, a.activity[:, None], b.activity[:, None])
    active = in_tenure & ((rng.random((n, months)) < activity) | (rel == 0))

    # the shop's size is its level halfway through its (pre-drift) tenure: growth does not change the mean size
    mid = ((np.minimum(plan.end_t, plan.change_t) - plan.start_t - 1) / 2.0)[:, None]
    log_level = (plan.log_size[:, None] + np.log1p(b.growth)[:, None] * (before_rel - mid) / 12.0
                 + np.log1p(a.growth)[:, None] * after_rel / 12.0)
    cal = t % 12
    season = np.where(after, a.season[:, cal[0]], b.season[:, cal[0]])
    sigma = np.where(after, a.volatility[:, None], b.volatility[:, None])
    noise = sigma * rng.standard_normal((n, months)) - 0.5 * sigma**2
    total = np.exp(log_level + noise) * season
    breadth = np.where(after, a.breadth[:, None] * (1 + a.breadth_growth[:, None]) ** (after_rel / 12.0),
                       b.breadth[:, None] * (1 + b.breadth_growth[:, None]) ** (before_rel / 12.0))
    count = np.clip(np.rint(breadth + 0.5 * rng.standard_normal((n, months))), 1, catalogue).astype(np.int64)

    slot_weight = _SLOT_WEIGHT if catalogue == CATALOGUE else np.arange(1, catalogue + 1) ** -0.9
    shop_i, month_i = np.nonzero(active)
    cells = shop_i.size
    # weighted draw without replacement: the `count` smallest exponential(1) / weight keys (exponential race)
    keys = rng.standard_exponential((cells, catalogue), dtype=np.float32) / slot_weight.astype(np.float32)
    order = np.argsort(keys, axis=1)
    picked = np.arange(catalogue)[None, :] < count[shop_i, month_i][:, None]
    cell, rank = np.nonzero(picked)
    slot = order[cell, rank]
    weight = slot_weight[slot] * np.exp(SPLIT_SIGMA * rng.standard_normal(slot.size))
    weight_sum = np.bincount(cell, weights=weight, minlength=cells)
    qty = np.maximum(np.rint(total[shop_i, month_i][cell] * weight / weight_sum[cell]), 1).astype(np.int64)
    product = catalogues(rng, n, catalogue)[shop_i[cell], slot]
    return {"shop": shop_i[cell], "product": product, "t": month_i[cell], "qty": qty}
