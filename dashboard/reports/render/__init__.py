"""A report as a file: CSV, Excel or PDF. `export(report, fmt)` is what every download uses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dashboard.reports.model import Report


class ExportFormat(StrEnum):
    csv = "csv"
    excel = "excel"
    pdf = "pdf"


# What the API and a report definition accept for each format.
ALIASES: dict[str, ExportFormat] = {
    "csv": ExportFormat.csv,
    "excel": ExportFormat.excel,
    "xlsx": ExportFormat.excel,
    "pdf": ExportFormat.pdf,
}


@dataclass(frozen=True)
class Export:
    content: bytes
    filename: str
    media_type: str


def parse_format(value: str) -> ExportFormat:
    try:
        return ALIASES[value.lower()]
    except KeyError:
        raise ValueError(f"unknown export format {value!r}: one of {', '.join(sorted(ALIASES))}") from None


def export(report: Report, fmt: ExportFormat | str) -> Export:
    fmt = parse_format(fmt) if isinstance(fmt, str) else fmt
    # Imported on use: the PDF renderer pulls in reportlab and kaleido, which a CSV need not load.
    if fmt is ExportFormat.csv:
        from dashboard.reports.render.csv import render_csv

        return render_csv(report)
    if fmt is ExportFormat.excel:
        from dashboard.reports.render.xlsx import render_xlsx

        return render_xlsx(report)
    from dashboard.reports.render.pdf import render_pdf

    return render_pdf(report)


def base_filename(report: Report) -> str:
    """`analytics_2026-03-01_2026-03-30`: the section and the date range, safe in any file system."""
    stamp = report.extra.get("filename_stamp") or f"{report.generated_at:%Y%m%dT%H%M%SZ}"
    return f"{report.section}_{stamp}"
