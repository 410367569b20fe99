"""The papers' tables from a results database: metrics overall and per hole-ratio bucket.

Per-image metrics are the mean over the bucket's images (NaN values, e.g. a masked SSIM with no
window centre in the region, are left out of the mean); dataset-level metrics are the value
computed on that bucket's images (only where it had enough images). Buckets are half-open
``[lo, hi)`` percent of the pixels (see :mod:`.buckets`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write
from ..errors import InpaintlabError
from .buckets import OVERALL, SCHEMES
from .store import read_frames


def _higher_is_better(key: str) -> bool | None:
    from ..metrics import METRICS

    name = key.split("@", 1)[0]
    return METRICS.get(name).higher_is_better if name in METRICS else None


def _metric_order(run_dir: Path) -> list[str]:
    """The metrics in the order the run was asked for (``config.json``), for stable columns."""
    try:
        return list(json.loads((run_dir / "config.json").read_text()).get("metrics_used") or [])
    except (OSError, ValueError):
        return []


def metric_header(key: str) -> str:
    """``psnr`` -> ``psnr ↑``: the arrow says which way is better, as in the papers."""
    hib = _higher_is_better(key)
    return key if hib is None else f"{key} {'↑' if hib else '↓'}"


def build_table(run_dir: str | Path) -> pd.DataFrame:
    """One row per (scheme, bucket): ``n`` images and every metric; the first row is everything."""
    path = Path(run_dir) / "results.sqlite"
    if not path.is_file():
        raise InpaintlabError(f"{run_dir} is not an evaluation folder (no results.sqlite)")
    f = read_frames(path)
    images, metrics, dataset = f["images"], f["metrics"], f["dataset_metrics"]
    wide = metrics.pivot(index="image", columns="metric", values="value") if len(metrics) else pd.DataFrame()
    found = list(wide.columns) + sorted(set(dataset["metric"]) - set(wide.columns))
    keys = [k for k in _metric_order(Path(run_dir)) if k in found] + [k for k in found if k not in _metric_order(Path(run_dir))]
    rows = []
    scopes = [("all", OVERALL, None)] + [(s, b.label, b) for s, bs in SCHEMES.items() for b in bs]
    for scheme, label, bucket in scopes:
        if bucket is None:
            members = list(images["image"])
        else:
            inside = [bucket.contains(int(k), int(n)) for k, n in zip(images["hole_pixels"], images["pixels"])]
            members = list(images["image"][inside])
        row = {"scheme": scheme, "bucket": label, "n": len(members)}
        for key in keys:
            if key in wide.columns:
                v = wide.loc[wide.index.isin(members), key]
                row[key] = float(v.mean()) if len(v) and v.notna().any() else math.nan
            else:
                d = dataset[(dataset["bucket"] == label) & (dataset["metric"] == key)]
                row[key] = float(d["value"].iloc[0]) if len(d) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["scheme", "bucket", "n", *keys])


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def to_markdown(table: pd.DataFrame, title: str = "") -> str:
    """A GitHub-flavoured markdown table (no extra dependency)."""
    cols = list(table.columns)
    heads = [metric_header(c) if c not in ("scheme", "bucket", "n", "run") else c for c in cols]
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


NOTE = ("Hole-ratio buckets are half-open [lo, hi) % of the image's pixels; `lama`: LaMa's 10 % bins, "
        "`strdiffusion`: StrDiffusion Table 1's buckets (the same intervals). Per-image metrics: mean over "
        "the bucket's images; dataset-level metrics: computed on the bucket when it holds enough images.")


def write_tables(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``table.md`` and ``table.csv`` into the run folder."""
    run_dir = Path(run_dir)
    table = build_table(run_dir)
    md = f"# Evaluation {run_dir.name}\n\n{NOTE}\n\n" + to_markdown(table)
    csv = table.to_csv(index=False, float_format="%.6g")
    atomic_write(run_dir / "table.md", lambda f: f.write(md.encode()))
    atomic_write(run_dir / "table.csv", lambda f: f.write(csv.encode()))
    return run_dir / "table.md", run_dir / "table.csv"


def compare_table(run_dirs: list[Path], bucket: str = OVERALL) -> pd.DataFrame:
    """Side by side: one row per run, its ``n`` and every metric (union over runs) in ``bucket``."""
    rows = []
    for d in run_dirs:
        t = build_table(d)
        sel = t[t["bucket"] == bucket].head(1)
        if sel.empty:
            known = ", ".join(dict.fromkeys(t["bucket"]))
            raise InpaintlabError(f"unknown bucket {bucket!r}; choose one of: {known}")
        rows.append({"run": str(d), **sel.drop(columns=["scheme", "bucket"]).iloc[0].to_dict()})
    table = pd.DataFrame(rows)
    table["n"] = table["n"].astype(int)
    cols = ["run", "n"] + [c for c in table.columns if c not in ("run", "n")]
    return table[cols]


__all__ = ["build_table", "to_markdown", "write_tables", "compare_table", "metric_header", "NOTE"]
