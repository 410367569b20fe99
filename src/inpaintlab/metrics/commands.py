"""``inpaintlab metrics``: the registered metrics, what they need and where they apply."""

from __future__ import annotations

import typer

from ..console import out

app = typer.Typer()


@app.command()
def metrics():
    """List the metrics: name, regions (NAME@REGION), what each needs, and where it can be used."""
    from rich.table import Column, Table

    from . import METRICS, reference_metric_names

    rip = set(reference_metric_names())
    t = Table(Column("name", no_wrap=True), Column("regions"), Column("needs", overflow="fold"),
              Column("used by"), Column("description", overflow="fold"))
    for name, cls in METRICS.items():
        needs = [*(["the hole"] if cls.needs_hole else []), *(["the raw output"] if cls.reads_raw else []),
                 *cls.weight_files]
        where = "eval, rip" if name in rip else "eval"
        kind = " (dataset-level)" if cls.dataset_level else ""
        t.add_row(name, ", ".join(cls.regions), ", ".join(needs) or "-", where + kind,
                  (cls.__doc__ or "").strip().splitlines()[0])
    out.print(t)
    out.print("weight files: `inpaintlab weights list`; a metric whose files are missing is skipped with a note",
              markup=False)
