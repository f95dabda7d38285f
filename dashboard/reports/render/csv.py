"""A report as CSV: one table as a `.csv`, several as a `.zip` of one CSV each plus `metrics.csv`.

CSV is for programs: the header is the column names, values are exact (see `cells.csv_value`)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence

from dashboard.reports.model import Report, Table
from dashboard.reports.render import Export, base_filename
from dashboard.reports.render.cells import csv_value

CSV_TYPE = "text/csv"
ZIP_TYPE = "application/zip"
METRICS_HEADER = ("metric", "value", "previous", "format")


def render_csv(report: Report) -> Export:
    base = base_filename(report)
    if len(report.tables) == 1:
        return Export(table_csv(report.tables[0]), f"{base}.csv", CSV_TYPE)
    if not report.tables:
        return Export(metrics_csv(report), f"{base}.csv", CSV_TYPE)
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for t in report.tables:
            archive.writestr(_member(t.name, used), table_csv(t))
        archive.writestr(_member("metrics", used), metrics_csv(report))
    return Export(buffer.getvalue(), f"{base}.zip", ZIP_TYPE)


def table_csv(t: Table) -> bytes:
    formats = [c.format for c in t.columns]
    return _csv(
        [c.name for c in t.columns],
        ([csv_value(v, f) for v, f in zip(r, formats, strict=True)] for r in t.rows),
    )


def metrics_csv(report: Report) -> bytes:
    rows = (
        [m.label, csv_value(m.value, m.format), csv_value(m.previous, m.format), m.format.value]
        for m in report.metrics
    )
    return _csv(METRICS_HEADER, rows)


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _member(name: str, used: set[str]) -> str:
    """`<name>.csv`, safe as a zip member (no paths) and unique in the archive."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "table"
    candidate, n = stem, 2
    while candidate in used:
        candidate, n = f"{stem}_{n}", n + 1
    used.add(candidate)
    return f"{candidate}.csv"
