"""Stability bar of segment ids across retrains, on the project's generator (issue 6).

Run: ``.venv/bin/python bench/bench_stability.py [--retailers 20000] [--years 5] [--drift-month 2023-01]
[--drift-fraction 0.05] [--feature-set NAME] [--half-life M] [--window-months 0] [--shop-window-months 0]
[--scenarios same-data,one-month,drift] [--json OUT]``.

Through the running services: ``bench/bench_stability.py --through-services 4000,20000 --runs 3 --years 5
--drift-month 2023-01 --drift-fraction 0.1`` runs ``stableseg demo`` (embedded broker and Redis, the four services,
default model settings; the drift three years before the end, as in the offline ``drift`` scenario) per size and
run, and prints kept share, drifted with a change, coverage and flap rate per run, their
spread, and the bars (>= 99%, >= 95%, >= 90%, <= 1%; runs within 0.5 points).

Every step is the code the services run: ``build_features`` (the feature store's definition), ``fit_bundle`` (the
trainer's fit) and :func:`services.assigner.relabel.relabel` (what the assigner runs on ``models.published``). Three
scenarios, each a first model then a retrain, both relabelled in turn:

- ``same-data``: the same data refitted with another seed; bar: >= 98% of the retailers that had a segment keep it;
- ``one-month``: one more month of data (no drift), refitted with the same seed; bar: >= 99% keep their id;
- ``drift``: data with ``--drift-fraction`` of retailers switching archetype at ``--drift-month``; the first model
  sees the months before it, the retrain every month; bars: >= 90% of the drifted retailers that are not noise
  in the retrain receive a change, and >= 98% of the others keep their id.

``--feature-set`` picks the feature set (default: the settings' ``feature_set``); ``--half-life M`` (exploration
only) uses an unregistered ``behaviour-v3`` with another recency half-life. ``--window-months N`` computes features
over each model's trailing N months of the DATA instead of the whole history (a bench-only global window; the
services compute each shop from its own whole history); ``--shop-window-months N`` (exploration only) keeps each
shop's own trailing N months (counted back from the shop's last month before the cut). Prints each retrain's
figures and lineage.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from services.assigner.book import Book
from services.assigner.relabel import RelabelOutcome, relabel
from shared.config import get_settings
from shared.data.generator import generate_frames
from shared.features import FeatureSet, build_features, get_feature_set
from shared.features.behaviour_v3 import BehaviourV3
from shared.model.fit import fit_bundle
from shared.model.params import ModelParams
from shared.segments import MatchParams

FEATURE_SET: FeatureSet = get_feature_set(get_settings().feature_set)  # set by main
SHOP_WINDOW = 0  # set by main


SERVICE_BARS = {"kept_share": (">=", 0.99), "drifted_event_share": (">=", 0.95), "coverage": (">=", 0.90),
                "flap_rate": ("<=", 0.01)}


def services_runs(retailers: int, years: int, runs: int, drift_fraction: float,
                  drift_month: str) -> list[dict[str, Any]]:
    """``stableseg demo`` (embedded stack, the four services, default model settings) ``runs`` times on the same
    data; each run's stability figures (``--json``)."""
    out = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="stableseg-stability-") as tmp:
            figures = Path(tmp) / "figures.json"
            started = time.perf_counter()
            cmd = [sys.executable, "-m", "services.cli", "demo", "--retailers", str(retailers), "--years", str(years),
                   "--drift-fraction", str(drift_fraction), "--data-dir", str(Path(tmp) / "demo"), "--json",
                   str(figures), "--step-timeout", "900", "--drift-month", drift_month]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"demo run {run + 1} for {retailers} retailers failed:\n{done.stdout[-3000:]}"
                                   f"{done.stderr[-3000:]}")
            out.append({**json.loads(figures.read_text()), "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps({"retailers": retailers, "run": run + 1, **out[-1]}), flush=True)
    return out


def services_table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: each figure per run, the spread across runs, and the bar."""
    lines = ["| retailers | figure | runs | spread (points) | bar |", "|---|---|---|---|---|"]
    for retailers, runs in results.items():
        for name, (op, bar) in SERVICE_BARS.items():
            values = [r[name] for r in runs]
            ok = all(v >= bar if op == ">=" else v <= bar for v in values)
            spread = 100 * (max(values) - min(values))
            lines.append(f"| {int(retailers):,} | {name} | {' / '.join(f'{v:.1%}' for v in values)} | {spread:.1f} | "
                         f"{op} {bar:.0%} {'pass' if ok and spread <= 0.5 else 'FAIL'} |")
    return "\n".join(lines)


def period(text: str) -> int:
    year, month = text.split("-")
    return int(year) * 12 + int(month) - 1


def features_until(sales: pd.DataFrame, end: int | None, window: int) -> pd.DataFrame:
    """Eligible retailers' features from the sales before month index ``end`` (all when None)."""
    t = sales["year"].to_numpy() * 12 + sales["month"].to_numpy() - 1
    mask = np.ones(len(sales), dtype=bool) if end is None else t < end
    if window:
        mask &= t >= (t[mask].max() + 1 - window)
    if SHOP_WINDOW:
        last = pd.Series(np.where(mask, t, -1)).groupby(sales["shop_id"].to_numpy()).transform("max").to_numpy()
        mask &= t > last - SHOP_WINDOW
    frame = build_features(sales[mask], FEATURE_SET)
    return frame[frame["eligible"]].drop(columns=["eligible", "as_of"])


def fit_and_relabel(book: Book, features: pd.DataFrame, seed: int, version: int, epochs: int) -> RelabelOutcome:
    started = time.perf_counter()
    params = ModelParams(seed=seed, epochs=epochs or None)  # epochs 0: the derived schedule (the default)
    bundle, metrics = fit_bundle(features, FEATURE_SET.name, params)
    fitted = time.perf_counter()
    outcome = relabel(book, features, bundle, version, MatchParams.from_settings(get_settings()))
    served = metrics["served"]
    relabelled = time.perf_counter() - fitted
    print(f"  v{version}: {len(features)} retailers, fit {fitted - started:.0f} s (seed {seed}): served "
          f"{served['space']} {served['clusters']} clusters, noise {served['noise_ratio']:.1%}; relabel "
          f"{relabelled:.1f} s; {outcome.counts}", flush=True)
    return outcome


def kept_share(before: RelabelOutcome, after: RelabelOutcome, among: pd.Index | None = None) -> tuple[float, int]:
    """Share of retailers that had a segment before and are still eligible (optionally among ``among``) holding
    the same id after."""
    prev = before.assignments["segment"]
    had = prev[prev.notna() & (after.assignments["status"].reindex(prev.index) != "ineligible").to_numpy()]
    if among is not None:
        had = had[had.index.isin(among)]
    now = after.assignments["segment"].reindex(had.index)
    return float((now == had).mean()) if len(had) else float("nan"), len(had)


def scenario(name: str, first: tuple[pd.DataFrame, int], second: tuple[pd.DataFrame, int], epochs: int,
             truth: pd.DataFrame | None = None) -> dict[str, Any]:
    print(f"\n[{name}]", flush=True)
    v1 = fit_and_relabel(Book(), first[0], first[1], 1, epochs)
    v2 = fit_and_relabel(v1.book(), second[0], second[1], 2, epochs)
    result: dict[str, Any] = {"lineage": v2.lineage, "counts": v2.counts}
    if truth is None:
        share, n = kept_share(v1, v2)
        result.update(kept=share, scored=n)
        print(f"  kept their segment id: {share:.2%} of {n} retailers with a segment")
    else:
        after = truth["archetype_after"]
        drifted = pd.Index(after[after.notna() & (after != "None") & (after != "")].index.astype(str))
        share, n = kept_share(v1, v2, truth.index.difference(drifted))
        labels = v2.assignments["label"]
        had = v1.assignments["segment"].notna()
        scored = drifted.intersection(had[had].index).intersection(labels[labels != -1].index)
        changed = v2.assignments.loc[scored, "changed"].mean() if len(scored) else float("nan")
        held = v2.assignments.loc[scored, "held"].mean() if len(scored) else float("nan")
        result.update(kept_unchanged=share, scored_unchanged=n, drifted_changed=float(changed),
                      drifted_held=float(held), scored_drifted=len(scored), drifted=len(drifted))
        print(f"  drifted, not noise, with a segment before: {len(scored)} of {len(drifted)} drifted; "
              f"received a change: {changed:.2%} (held by hysteresis: {held:.2%}; the rest stayed in their "
              "segment's cluster)")
        print(f"  unchanged archetype kept their segment id: {share:.2%} of {n}")
    print(f"  lineage: {json.dumps(v2.lineage)}")
    return result


def main(retailers: int = 20_000, years: int = 5, seed: int = 7, drift_month: str = "2023-01",
         drift_fraction: float = 0.05, feature_set: str = typer.Option(None, help="default: the settings'"),
         half_life: float = typer.Option(None, help="exploration: behaviour-v3 with this half-life (months)"),
         window_months: int = 0, shop_window_months: int = 0, epochs: int = 0,
         scenarios: str = "same-data,one-month,drift",
         json_out: Path | None = typer.Option(None, "--json"),
         through_services: str = typer.Option("", help="e.g. 4000,20000: run the demo (the running services) per "
                                              "size instead of the offline scenarios"),
         runs: int = typer.Option(3, help="with --through-services: runs per size (the same data each time)"),
         ) -> None:
    """Run the scenarios and print the figures (see the module docstring)."""
    if through_services:
        results = {n: services_runs(int(n), years, runs, drift_fraction, drift_month)
                   for n in through_services.split(",")}
        print(services_table(results))
        if json_out is not None:
            json_out.write_text(json.dumps(results, indent=2))
        return
    global FEATURE_SET, SHOP_WINDOW
    SHOP_WINDOW = shop_window_months
    FEATURE_SET = get_feature_set(feature_set or get_settings().feature_set)
    if half_life is not None:
        FEATURE_SET = BehaviourV3(half_life)
    wanted = [s.strip() for s in scenarios.split(",") if s.strip()]
    print(f"stability bench: {retailers} retailers x {years} years, seed {seed}, feature set {FEATURE_SET.name}"
          f"{f' (half-life {half_life} months)' if half_life is not None else ''}, window "
          f"{window_months or 'whole history'} months, shop window {shop_window_months or 'none'}, epochs {epochs}",
          flush=True)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    if {"same-data", "one-month"} & set(wanted):
        sales = generate_frames(retailers, years, seed).sales
        last = int((sales["year"] * 12 + sales["month"] - 1).max())
        if "same-data" in wanted:
            full = features_until(sales, None, window_months)
            results["same-data"] = scenario("same data, another seed", (full, 42), (full, 43), epochs)
        if "one-month" in wanted:
            before = features_until(sales, last, window_months)
            results["one-month"] = scenario("one more month, no drift", (before, 42),
                                            (features_until(sales, None, window_months), 42), epochs)
    if "drift" in wanted:
        data = generate_frames(retailers, years, seed, drift_fraction=drift_fraction, drift_month=drift_month)
        truth = data.truth.set_index("shop_id")
        truth.index = truth.index.astype(str)
        results["drift"] = scenario(f"drift {drift_fraction:.0%} at {drift_month}",
                                    (features_until(data.sales, period(drift_month), window_months), 42),
                                    (features_until(data.sales, None, window_months), 42), epochs, truth)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    typer.run(main)
