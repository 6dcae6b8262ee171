"""Quality grid of `stableseg pipeline run` with DEFAULT settings on the project's generator (issue 11's bars).

    .venv/bin/python bench/bench_quality.py --out /tmp/bench-quality            # the whole grid
    .venv/bin/python bench/bench_quality.py --out /tmp/q --cells 1000x3:1,5000x5:2   # some cells

Every cell (retailers x years, data seed, world) is generated once, then run through the pipeline twice, with model
seeds 42 and 7. Per cell: served / latent / raw ARI against the planted truth, served noise, the space and density
the pipeline chose, two-seed agreement (ARI of the two runs' served labels) and wall time. Results are appended to
OUT/results.jsonl as they come (a rerun skips finished cells); the markdown table at the end marks each bar:
served ARI >= 0.90 (>= 0.95 for n >= 20,000), noise <= 10%, served >= max(latent, raw) - 0.02, agreement >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import adjusted_rand_score

STABLESEG = [sys.executable, "-m", "services.cli"]
WORLDS = {  # name -> generator options (the harder worlds of `stableseg generate`)
    "default": [],
    "sparse": ["--activity", "0.6"],
    "wide-uniform": ["--breadth", "2", "--mix", "uniform"],
    "skewed-18m": ["--mix", "skewed", "--months", "18"],
}


def default_cells() -> list[tuple[int, int, int, str]]:
    cells = [(n, y, s, "default") for n in (1000, 2000, 5000) for y in (3, 5) for s in (1, 2, 3)]
    cells += [(n, y, 1, "default") for n in (20_000, 100_000) for y in (3, 5)]
    cells += [(5000, 3, 1, w) for w in WORLDS if w != "default"] + [(2000, 3, 2, "sparse")]
    return cells


def parse_cells(text: str) -> list[tuple[int, int, int, str]]:
    """``NxY:SEED[:WORLD]`` items separated by commas."""
    out = []
    for item in text.split(","):
        size, seed, *world = item.split(":")
        n, y = size.split("x")
        out.append((int(n), int(y), int(seed), world[0] if world else "default"))
    return out


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})


def cell_result(out: Path, n: int, years: int, seed: int, world: str) -> dict:
    data = out / f"data-{n}x{years}-s{seed}-{world}"
    if not (data / "sales.csv").exists():
        gen = run([*STABLESEG, "generate", "--retailers", str(n), "--years", str(years), "--seed", str(seed),
                   "--out", str(data), *WORLDS[world]])
        gen.check_returncode()
    runs, labels = {}, {}
    for model_seed in (42, 7):
        art = data.parent / f"{data.name}-m{model_seed}"
        began = time.perf_counter()
        proc = run([*STABLESEG, "pipeline", "run", "--input", str(data / "sales.csv"), "--truth",
                    str(data / "truth.csv"), "--artifacts", str(art), "--json"],
                   env={"STABLESEG_SEED": str(model_seed)})
        wall = time.perf_counter() - began
        if proc.returncode != 0:
            return {"n": n, "years": years, "seed": seed, "world": world, "exit": proc.returncode,
                    "stderr": proc.stderr.strip().splitlines()[-1:]}
        runs[model_seed] = {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall_seconds": round(wall, 1)}
        pred = pd.read_csv(art / "cluster_predictions.csv", dtype={"shop_id": str}).set_index("shop_id")
        labels[model_seed] = pred["served_cluster"]
    a = runs[42]
    common = labels[42].index.intersection(labels[7].index)
    return {
        "n": n, "years": years, "seed": seed, "world": world, "exit": 0, "eligible": a["eligible"],
        "served_ari": a["served"]["ari"], "latent_ari": a["latent"]["ari"], "raw_ari": a["raw"]["ari"],
        "served_noise": a["served"]["noise_ratio"], "served_space": a["served"]["space"],
        "min_cluster_size": a["served"]["min_cluster_size"], "clusters": a["served"]["clusters"],
        "agreement": adjusted_rand_score(labels[42].loc[common], labels[7].loc[common]),
        "served_ari_seed7": runs[7]["served"]["ari"], "wall_seconds": a["wall_seconds"],
        "seconds": a["seconds"],
    }


def bars(r: dict) -> dict[str, bool]:
    if r.get("exit"):
        return {"ran": False}
    need = 0.95 if r["n"] >= 20_000 else 0.90
    return {"ari": r["served_ari"] >= need, "noise": r["served_noise"] <= 0.10,
            "vs_best": r["served_ari"] >= max(r["latent_ari"], r["raw_ari"]) - 0.02,
            "agreement": r["agreement"] >= 0.95}


def table(results: list[dict]) -> str:
    lines = ["| retailers x years | data seed | world | served (space, mcs) | served ARI | latent ARI | raw ARI "
             "| noise | two-seed agreement | wall s | bars |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("exit"):
            lines.append(f"| {r['n']:,} x {r['years']} | {r['seed']} | {r['world']} | exit {r['exit']} | "
                         f"{' '.join(r['stderr'])} | | | | | | fail |")
            continue
        ok = bars(r)
        mark = "pass" if all(ok.values()) else "FAIL " + ",".join(k for k, v in ok.items() if not v)
        lines.append(f"| {r['n']:,} x {r['years']} | {r['seed']} | {r['world']} | {r['served_space']}, "
                     f"{r['min_cluster_size']} | {r['served_ari']:.3f} | {r['latent_ari']:.3f} | {r['raw_ari']:.3f} | "
                     f"{r['served_noise']:.1%} | {r['agreement']:.3f} | {r['wall_seconds']:.0f} | {mark} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-quality"))
    parser.add_argument("--cells", type=parse_cells, default=None, help="NxY:SEED[:WORLD],... (default: the grid)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "results.jsonl"
    done = {}
    if store.exists():
        for line in store.read_text().splitlines():
            r = json.loads(line)
            done[(r["n"], r["years"], r["seed"], r["world"])] = r
    results = []
    for cell in args.cells or default_cells():
        if cell not in done:
            done[cell] = cell_result(args.out, *cell)
            with store.open("a") as fh:
                fh.write(json.dumps(done[cell]) + "\n")
            print(json.dumps(done[cell]), file=sys.stderr, flush=True)
        results.append(done[cell])
    print(table(results))


if __name__ == "__main__":
    main()
