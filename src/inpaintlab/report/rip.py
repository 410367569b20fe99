"""Figures of a RIP run, after the paper's Fig. 4-13, written as PNG files with matplotlib."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from ..atomic import atomic_write  # noqa: E402
from ..errors import InpaintlabError  # noqa: E402
from ..registry import Registry, callable_item  # noqa: E402
from ..rip.engine import safe_name  # noqa: E402
from ..rip.store import open_readonly  # noqa: E402
from ..runs import read_record  # noqa: E402

#: Preferred metric for the per-seed figure: the paper uses VGG for Fig. 13 (fewest outliers).
SEED_METRIC_PREFERENCE = ("lpips-vgg", "lpips-alex", "lpips-squeeze", "ssim", "psnr")


def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The saved config and the metrics and kept-image tables of a run folder."""
    run_dir = Path(run_dir)
    cfg_path, db_path = run_dir / "config.json", run_dir / "results.sqlite"
    if not cfg_path.is_file() or not db_path.exists():
        raise InpaintlabError(f"{run_dir} is not a RIP run folder (no config.json / results.sqlite); "
                              f"make one with `inpaintlab rip run --out {run_dir}`")
    record = read_record(cfg_path)
    with open_readonly(db_path) as con:
        metrics = pd.read_sql_query("SELECT * FROM metrics ORDER BY image, mask_size, seed, iteration, metric", con)
        kept = pd.read_sql_query("SELECT * FROM kept ORDER BY image, mask_size, seed, iteration", con)
    if metrics.empty:
        raise InpaintlabError(f"{run_dir} has no results yet; run or resume it first")
    return record, metrics, kept


def summary_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count of each metric per cell size and checkpoint percent (paper Fig. 7)."""
    finite = metrics[np.isfinite(metrics["value"])]
    g = finite.groupby(["metric", "mask_size", "percent"])["value"]
    return g.agg(["mean", "std", "count"]).reset_index()


def _metric_order(metrics: pd.DataFrame) -> list[str]:
    names = list(dict.fromkeys(metrics["metric"]))
    pref = ["lpips-alex", "lpips-squeeze", "lpips-vgg", "ssim", "psnr"]
    return sorted(names, key=lambda m: pref.index(m) if m in pref else len(pref))


def _panels(n: int, width: float = 4.2, height: float = 3.4):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def plot_mean_std(metrics: pd.DataFrame, path: Path) -> Path:
    """Mean +- std over images (and seeds) of each metric against percent inpainted (Fig. 7)."""
    table = summary_table(metrics)
    names = _metric_order(metrics)
    fig, axes = _panels(len(names))
    for ax, name in zip(axes, names):
        for s, part in table[table["metric"] == name].groupby("mask_size"):
            ax.errorbar(part["percent"], part["mean"], yerr=part["std"].fillna(0), capsize=3, marker="o",
                        ms=3, label=f"{s}x{s}")
        ax.set(title=name, xlabel="inpainted pixels (% of image)", ylabel=name)
        ax.grid(alpha=0.3)
        ax.legend(title="cell")
    fig.suptitle("RIP: mean +- std across images")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_scatter(metrics: pd.DataFrame, path: Path) -> Path:
    """Every image's value at every checkpoint, per cell size (Fig. 8)."""
    names = _metric_order(metrics)
    sizes = sorted(metrics["mask_size"].unique())
    fig, axes = _panels(len(names))
    step = 6.0  # percent offset between cell sizes so their points do not overlap
    for ax, name in zip(axes, names):
        part = metrics[(metrics["metric"] == name) & np.isfinite(metrics["value"])]
        for k, s in enumerate(sizes):
            p = part[part["mask_size"] == s]
            ax.scatter(p["percent"] + (k - (len(sizes) - 1) / 2) * step, p["value"], s=8, alpha=0.6, label=f"{s}x{s}")
        ax.set(title=name, xlabel="inpainted pixels (% of image)", ylabel=name)
        ax.grid(alpha=0.3)
        ax.legend(title="cell")
    fig.suptitle("RIP: per-image values")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_seed_spread(metrics: pd.DataFrame, path: Path, max_images: int = 6) -> Path:
    """Mean +- std across seeds per image and cell size, one panel per image (Fig. 13)."""
    present = set(metrics["metric"])
    name = next((m for m in SEED_METRIC_PREFERENCE if m in present), sorted(present)[0])
    part = metrics[(metrics["metric"] == name) & np.isfinite(metrics["value"])]
    images = list(dict.fromkeys(part["image"]))[:max_images]
    fig, axes = _panels(len(images), width=3.8)
    n_seeds = part["seed"].nunique()
    for ax, image in zip(axes, images):
        g = part[part["image"] == image].groupby(["mask_size", "percent"])["value"].agg(["mean", "std"]).reset_index()
        for s, p in g.groupby("mask_size"):
            std = p["std"].fillna(0)
            ax.plot(p["percent"], p["mean"], marker="o", ms=3, label=f"{s}x{s}")
            ax.fill_between(p["percent"], p["mean"] - std, p["mean"] + std, alpha=0.2)
        ax.set(title=image, xlabel="inpainted pixels (%)", ylabel=name)
        ax.grid(alpha=0.3)
        ax.legend(title="cell", fontsize=7)
    fig.suptitle(f"RIP: spread across {n_seeds} seed(s) per image ({name})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_strip(run_dir: Path, kept: pd.DataFrame, image: str, seed: int, path: Path, thumb: int = 128) -> Path:
    """An image through its kept checkpoints, one row per cell size (Fig. 4, 5, 10-12)."""
    rows = kept[(kept["image"] == image) & (kept["seed"] == seed)]
    sizes = sorted(rows["mask_size"].unique())
    cols = max(len(rows[rows["mask_size"] == s]) for s in sizes)
    fig, axes = plt.subplots(len(sizes), cols, figsize=(1.6 * cols, 1.8 * len(sizes)), squeeze=False)
    for r, s in enumerate(sizes):
        part = rows[rows["mask_size"] == s].sort_values("iteration")
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(part):
                rec = part.iloc[c]
                img = Image.open(run_dir / rec["path"]).convert("RGB")
                img.thumbnail((thumb, thumb))
                ax.imshow(np.asarray(img))
                ax.set_title(f"{rec['percent']:g}%", fontsize=7)
        axes[r][0].text(-0.08, 0.5, f"{s}x{s}", transform=axes[r][0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    fig.suptitle(f"{image} (seed {seed})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_report(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write every figure and a summary table of a RIP run; return the files written."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "figures"
    _, metrics, kept = load_run(run_dir)
    if out.exists() and not out.is_dir():
        raise InpaintlabError(f"cannot write the figures into {out}: it is a file; give a folder with --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InpaintlabError(f"cannot create the figures folder {out}: {e.strerror or e}") from None
    written = [
        plot_mean_std(metrics, out / "mean_std.png"),
        plot_scatter(metrics, out / "per_image_scatter.png"),
        plot_seed_spread(metrics, out / "seed_spread.png"),
    ]
    if not kept.empty:
        first_seed = int(kept["seed"].min())
        for image in dict.fromkeys(kept["image"]):
            written.append(plot_strip(run_dir, kept, image, first_seed, out / f"strip_{safe_name(image)}.png"))
    table = summary_table(metrics)
    table_path = out / "summary.csv"
    table.to_csv(table_path, index=False)
    written.append(table_path)
    return written


#: name -> writer(frame, binary file): the table formats of ``rip export`` (the name is also the file suffix)
EXPORT_FORMATS: Registry = Registry("export format", check=callable_item)
EXPORT_FORMATS.register("csv", lambda frame, f: frame.to_csv(f, index=False))
EXPORT_FORMATS.register("parquet", lambda frame, f: frame.to_parquet(f, index=False))


def export_format(fmt: str | None, dest: str | Path | None) -> str:
    """The format: ``fmt`` if given (the suffix of ``dest`` must agree), else ``dest``'s suffix, else csv."""
    suffix = Path(dest).suffix.lower().lstrip(".") if dest else ""
    if fmt is None:
        fmt = suffix if suffix in EXPORT_FORMATS else "csv"
        if suffix and suffix not in EXPORT_FORMATS:
            raise InpaintlabError(f"cannot tell the format of {dest} from its suffix; give --format "
                                  f"({', '.join(EXPORT_FORMATS.names())}) or a .csv / .parquet name")
    EXPORT_FORMATS.get(fmt)
    if suffix and suffix != fmt:
        raise InpaintlabError(f"--format {fmt} but the output {dest} ends in .{suffix}; name it .{fmt} or drop --format")
    return fmt


def export(run_dir: str | Path, fmt: str | None = None, dest: str | Path | None = None) -> Path:
    """Write the metrics table in ``fmt`` (a key of :data:`EXPORT_FORMATS`; from ``dest``'s suffix when None)."""
    run_dir = Path(run_dir)
    fmt = export_format(fmt, dest)
    _, metrics, _ = load_run(run_dir)
    path = Path(dest) if dest else run_dir / f"metrics.{fmt}"
    write = EXPORT_FORMATS.get(fmt)
    atomic_write(path, lambda f: write(metrics, f))
    return path
