"""A report as an Excel workbook: a Summary sheet, one typed and formatted sheet per table, and each
chart as a native Excel chart over the sheet's cells, so it stays live when the reader edits them.

Cells are typed (numbers, real dates) with number formats per column format; Excel has no Decimal, so
money is a float cell shown with up to 8 decimals, and the exact amounts are in the CSV export.
Excel has no time zones either: datetimes are the UTC wall time and the headers say UTC."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import xlsxwriter
from xlsxwriter.chart import Chart as XlChart
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from dashboard.reports.model import Cell, Chart, ChartKind, Column, Format, Report, Table
from dashboard.reports.render import Export, base_filename
from dashboard.reports.render.cells import change_fraction, display, is_number, naive_utc
from dashboard.reports.render.figures import chart_columns

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY_FORMAT = "#,##0.00######"
NUMBER_FORMATS: dict[Format, str] = {
    Format.integer: "#,##0",
    Format.money: MONEY_FORMAT,
    Format.ratio: "0.0%",
    Format.number: "#,##0.00##",
    Format.date: "yyyy-mm-dd",
    Format.datetime: "yyyy-mm-dd hh:mm",
}
CHANGE_FORMAT = "+0.0%;-0.0%;0.0%"
SUMMARY = "Summary"
RESERVED = {SUMMARY.lower(), "history"}  # Excel keeps "History" for itself

# A table sheet: its title, a note, the header, then the rows.
TITLE_ROW, NOTE_ROW, HEADER_ROW, FIRST_ROW = 0, 1, 2, 3
CHART_SIZE = {"width": 720, "height": 360}
CHART_ROWS = 20  # rows a chart covers at the default row height, and a gap
BAND_COLOR = "#636EFA"
NO_ROWS = "No rows for these filters."


def render_xlsx(report: Report) -> Export:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "nan_inf_to_errors": True})
    workbook.set_properties({"title": report.title, "subject": report.subtitle, "comments": report.freshness})
    styles = _Styles(workbook)
    summary = workbook.add_worksheet(SUMMARY)
    names = _sheet_names(report.tables)
    for t in report.tables:
        sheet = workbook.add_worksheet(names[t.name])
        _write_table(sheet, t, styles)
        charts = [c for c in report.charts if c.table == t.name]
        _write_charts(workbook, sheet, names[t.name], t, charts, styles)
    _write_summary(summary, report, names, styles)
    workbook.close()
    return Export(buffer.getvalue(), f"{base_filename(report)}.xlsx", XLSX_TYPE)


class _Styles:
    """The workbook's cell formats, made once each (xlsxwriter keeps every one it is given)."""

    def __init__(self, workbook: Workbook) -> None:
        self._workbook = workbook
        self._made: dict[str | None, Any] = {}
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.header = workbook.add_format(
            {"bold": True, "bg_color": "#E8EAF0", "bottom": 1, "text_wrap": True}
        )
        self.note = workbook.add_format({"italic": True, "font_color": "#555555"})
        self.link = workbook.add_format({"font_color": "blue", "underline": 1})

    def number(self, fmt: Format) -> Any:
        return self.code(NUMBER_FORMATS.get(fmt))

    def code(self, code: str | None) -> Any:
        if code not in self._made:
            self._made[code] = self._workbook.add_format({"num_format": code} if code else {})
        return self._made[code]


def _write_cell(sheet: Worksheet, row: int, col: int, value: Cell, fmt: Format, styles: _Styles) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif is_number(value):
        sheet.write_number(row, col, float(value), styles.number(fmt))
    elif isinstance(value, datetime):
        shown = Format.date if fmt is Format.date else Format.datetime
        sheet.write_datetime(row, col, naive_utc(value), styles.number(shown))
    elif isinstance(value, date):
        sheet.write_datetime(row, col, value, styles.number(Format.date))
    else:
        # write_string, not write: a shop called "=HYPERLINK(...)" stays text, not a formula.
        sheet.write_string(row, col, str(value))


def _header(column: Column) -> str:
    if column.format is Format.datetime and "UTC" not in column.label:
        return f"{column.label} (UTC)"
    return column.label


def _write_table(sheet: Worksheet, t: Table, styles: _Styles) -> None:
    sheet.write_string(TITLE_ROW, 0, t.title, styles.title)
    note = " ".join(n for n in (t.note, None if t.rows else NO_ROWS) if n)
    if note:
        sheet.write_string(NOTE_ROW, 0, note, styles.note)
    for col, column in enumerate(t.columns):
        sheet.write_string(HEADER_ROW, col, _header(column), styles.header)
        for i, row in enumerate(t.rows):
            _write_cell(sheet, FIRST_ROW + i, col, row[col], column.format, styles)
        sheet.set_column(col, col, _width(_header(column), t.values(column.name), column.format))
    sheet.freeze_panes(FIRST_ROW, 0)
    if t.columns:
        sheet.autofilter(HEADER_ROW, 0, HEADER_ROW + len(t.rows), len(t.columns) - 1)


def _width(header: str, values: Sequence[Cell], fmt: Format) -> float:
    # The longest display text of the first rows is a good enough guess of what Excel shows.
    longest = max((len(display(v, fmt)) for v in values[:500]), default=0)
    return float(min(60, max(8, len(header) * 0.9, longest) + 2))


def _sheet_names(tables: Sequence[Table]) -> dict[str, str]:
    """Each table's sheet: its name made legal (31 characters, none of []:*?/\\) and unique."""
    names: dict[str, str] = {}
    used = set(RESERVED)
    for t in tables:
        stem = re.sub(r"[\[\]:*?/\\]", "_", t.name).strip("'")[:31] or "table"
        name, n = stem, 2
        while name.lower() in used:
            suffix = f"_{n}"
            name, n = stem[: 31 - len(suffix)] + suffix, n + 1
        used.add(name.lower())
        names[t.name] = name
    return names


def _write_summary(sheet: Worksheet, report: Report, names: dict[str, str], styles: _Styles) -> None:
    sheet.set_column(0, 0, 32)
    sheet.set_column(1, 3, 20)
    sheet.set_column(4, 4, 60)
    sheet.write_string(0, 0, report.title, styles.title)
    sheet.write_string(1, 0, report.subtitle)
    sheet.write_string(2, 0, report.freshness, styles.note)
    sheet.write_string(3, 0, "Generated at (UTC)")
    sheet.write_datetime(3, 1, naive_utc(report.generated_at), styles.number(Format.datetime))
    row = 5
    if report.metrics:
        for col, label in enumerate(("Metric", "Value", "Previous period", "Change", "About")):
            sheet.write_string(row, col, label, styles.header)
        for m in report.metrics:
            row += 1
            sheet.write_string(row, 0, m.label)
            _write_cell(sheet, row, 1, m.value, m.format, styles)
            _write_cell(sheet, row, 2, m.previous, m.format, styles)
            fraction = change_fraction(m)
            if fraction is not None:
                sheet.write_number(row, 3, fraction, styles.code(CHANGE_FORMAT))
            if m.help:
                sheet.write_string(row, 4, m.help)
        row += 2
    if report.tables:
        sheet.write_string(row, 0, "Tables", styles.header)
        for t in report.tables:
            row += 1
            sheet.write_url(row, 0, f"internal:'{names[t.name]}'!A1", styles.link, string=t.title)
        row += 2
    if report.notes:
        sheet.write_string(row, 0, "Notes", styles.header)
        for note in report.notes:
            row += 1
            sheet.write_string(row, 0, note)


@dataclass
class _Data:
    """Where a chart's numbers are on the sheet: the x column and one column per (series, column)."""

    sheet: str
    first: int
    last: int
    x: int
    columns: dict[tuple[str | None, str], int]
    groups: list[str | None]

    def series(self, group: str | None, name: str) -> dict[str, Any]:
        col = self.columns[(group, name)]
        return {
            "name": [self.sheet, HEADER_ROW, col],
            "categories": [self.sheet, self.first, self.x, self.last, self.x],
            "values": [self.sheet, self.first, col, self.last, col],
        }


BAND = "\x00band"  # the helper column holding upper - lower, the height of a shaded band


def _write_charts(
    workbook: Workbook, sheet: Worksheet, name: str, t: Table, charts: Sequence[Chart], styles: _Styles
) -> None:
    if not charts:
        return
    free = len(t.columns) + 1  # the first column right of the table, after a gap
    placed: list[tuple[Chart, _Data | None]] = []
    for chart in charts:
        for column in chart_columns(chart):
            t.column(column)  # a spec naming a missing column fails here, with the table's name
        if not t.rows:
            placed.append((chart, None))
        elif _needs_helper(t, chart):
            helper, free = _write_helper(sheet, name, t, chart, free, styles)
            placed.append((chart, helper))
        else:
            columns: dict[tuple[str | None, str], int] = {(None, c.name): i for i, c in enumerate(t.columns)}
            last = FIRST_ROW + len(t.rows) - 1
            placed.append((chart, _Data(name, FIRST_ROW, last, t.column(chart.x), columns, [None])))
    for i, (chart, data) in enumerate(placed):
        row = HEADER_ROW + i * CHART_ROWS
        if data is None:
            sheet.write_string(row, free, f"{chart.title}: no data for these filters.", styles.note)
        else:
            sheet.insert_chart(row, free, _chart(workbook, t, chart, data))


def _needs_helper(t: Table, chart: Chart) -> bool:
    """A long table (series) needs one column per series; a band needs its height; a pie needs one
    row per label."""
    if chart.series or (chart.kind is ChartKind.area and chart.band):
        return True
    xs = t.values(chart.x)
    return chart.kind is ChartKind.pie and len(set(map(_key, xs))) < len(xs)


def _key(value: Cell) -> Any:
    return naive_utc(value) if isinstance(value, datetime) else value


def _write_helper(
    sheet: Worksheet, name: str, t: Table, chart: Chart, start: int, styles: _Styles
) -> tuple[_Data, int]:
    """The chart's data pivoted, right of the table: one row per x, one column per series and column
    (values of the same x and series summed). Returns where it is and the next free column."""
    xi = t.column(chart.x)
    # A pie has one slice per label: its series column, if any, is summed over.
    si = t.column(chart.series) if chart.series and chart.kind is not ChartKind.pie else None
    xs = _ordered([r[xi] for r in t.rows])
    groups: list[str | None] = [None] if si is None else list(dict.fromkeys(_group(r[si]) for r in t.rows))
    names = _plotted(chart)
    cells: dict[tuple[str | None, str], dict[Any, Cell]] = {}
    for row in t.rows:
        group = None if si is None else _group(row[si])
        for column in names:
            slot = cells.setdefault((group, column), {})
            slot[_key(row[xi])] = _add(slot.get(_key(row[xi])), row[t.column(column)])
    if chart.kind is ChartKind.area and chart.band:
        lower, upper = chart.band
        for group in groups:
            low, high = cells[(group, lower)], cells[(group, upper)]
            cells[(group, BAND)] = {x: _minus(high.get(x), low.get(x)) for x in low}
    by_name = {c.name: c for c in t.columns}
    sheet.write_string(TITLE_ROW, start, f"Chart data: {chart.title}", styles.note)
    x_column = by_name[chart.x]
    sheet.write_string(HEADER_ROW, start, _header(x_column), styles.header)
    for i, x in enumerate(xs):
        _write_cell(sheet, FIRST_ROW + i, start, x, x_column.format, styles)
    sheet.set_column(start, start, _width(_header(x_column), xs, x_column.format))
    positions: dict[tuple[str | None, str], int] = {}
    col = start
    for group in groups:
        for column in (*names, BAND) if (group, BAND) in cells else names:
            col += 1
            positions[(group, column)] = col
            if column == BAND and chart.band:
                source = by_name[chart.band[0]]
                label = f"{source.label} to {by_name[chart.band[1]].label}"
            else:
                source = by_name[column]
                label = source.label
            header = label if group is None else f"{group} · {label}"
            sheet.write_string(HEADER_ROW, col, header, styles.header)
            values = [cells[(group, column)].get(_key(x)) for x in xs]
            for i, value in enumerate(values):
                _write_cell(sheet, FIRST_ROW + i, col, value, source.format, styles)
            sheet.set_column(col, col, _width(header, values, source.format))
    data = _Data(name, FIRST_ROW, FIRST_ROW + len(xs) - 1, start, positions, groups)
    return data, col + 2


def _plotted(chart: Chart) -> list[str]:
    names = [*chart.y, *chart.y2, *(chart.band or ())]
    if chart.kind is ChartKind.pie:
        names = [chart.y[0]]
    return list(dict.fromkeys(names))


def _group(value: Cell) -> str:
    return "" if value is None else str(value)


def _ordered(values: Sequence[Cell]) -> list[Cell]:
    """Distinct x values: in time or numeric order when they are times or numbers, else as they come
    (a ranking's order)."""
    distinct = list({_key(v): v for v in values}.values())
    if all(isinstance(v, datetime) for v in distinct):
        return sorted(distinct, key=_key)
    if all(isinstance(v, date) and not isinstance(v, datetime) for v in distinct):
        return sorted(distinct, key=_key)
    if all(is_number(v) for v in distinct):
        return sorted(distinct, key=_key)
    return distinct


def _add(total: Cell, value: Cell) -> Cell:
    if total is None:
        return value
    if is_number(total) and is_number(value):
        if isinstance(total, Decimal) or isinstance(value, Decimal):
            return _decimal(total) + _decimal(value)
        return total + value
    return value


def _minus(high: Cell, low: Cell) -> Cell:
    if not (is_number(high) and is_number(low)):
        return None
    if isinstance(high, Decimal) or isinstance(low, Decimal):
        return _decimal(high) - _decimal(low)
    return high - low


def _decimal(value: int | float | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


CHART_TYPES: dict[ChartKind, dict[str, str]] = {
    ChartKind.line: {"type": "line"},
    ChartKind.bar: {"type": "column"},
    ChartKind.stacked_bar: {"type": "column", "subtype": "stacked"},
    ChartKind.area: {"type": "area"},
    ChartKind.pie: {"type": "pie"},
    ChartKind.scatter: {"type": "scatter"},
}


def _chart(workbook: Workbook, t: Table, chart: Chart, data: _Data) -> XlChart:
    by_name = {c.name: c for c in t.columns}
    if chart.kind is ChartKind.pie:
        main = workbook.add_chart({"type": "pie"})
        main.add_series({**data.series(data.groups[0], chart.y[0]), "data_labels": {"percentage": True}})
        _finish(main, chart)
        return main
    banded = chart.kind is ChartKind.area and chart.band is not None
    shaded = banded and len(data.groups) == 1  # stacked areas of several series would pile up
    if shaded:
        main = workbook.add_chart({"type": "area", "subtype": "stacked"})
        lines = workbook.add_chart({"type": "line"})
    else:
        main = workbook.add_chart(CHART_TYPES[ChartKind.line if banded else chart.kind])
        # Bars on two axes would hide each other: a bar chart's secondary axis is drawn as lines.
        bars = chart.kind in (ChartKind.bar, ChartKind.stacked_bar)
        lines = workbook.add_chart({"type": "line"}) if bars and chart.y2 else main
    columns = list(dict.fromkeys([*chart.y, *chart.y2]))
    for group in data.groups:
        if shaded and chart.band:
            # The band: an invisible area up to the lower bound, and the band's height stacked on it.
            main.add_series(
                {**data.series(group, chart.band[0]), "fill": {"none": True}, "border": {"none": True}}
            )
            main.add_series(
                {
                    **data.series(group, BAND),
                    "fill": {"color": BAND_COLOR, "transparency": 75},
                    "border": {"none": True},
                }
            )
        elif banded and chart.band:
            for column in chart.band:
                main.add_series({**data.series(group, column), "line": {"dash_type": "dash", "width": 1}})
        for column in columns:
            spec = data.series(group, column)
            if chart.kind is ChartKind.scatter:
                spec["marker"] = {"type": "circle", "size": 5}
            on_y2 = column in chart.y2
            target = lines if (on_y2 or shaded) else main
            target.add_series({**spec, "y2_axis": on_y2} if on_y2 else spec)
    if lines is not main:
        main.combine(lines)
    x_column = by_name[chart.x]
    x_axis: dict[str, Any] = {"name": chart.x_title or x_column.label}
    if x_column.format in (Format.date, Format.datetime):
        x_axis["num_format"] = "yyyy-mm-dd"
        if chart.kind is not ChartKind.scatter:
            x_axis["date_axis"] = True
    main.set_x_axis(x_axis)
    y_title = chart.y_title or (by_name[chart.y[0]].label if len(chart.y) == 1 else None)
    if y_title:
        main.set_y_axis({"name": y_title})
    if chart.y2:
        (lines if lines is not main else main).set_y2_axis(
            {"name": ", ".join(by_name[c].label for c in chart.y2)}
        )
    _finish(main, chart, hidden=[0] if shaded else [])
    return main


def _finish(main: XlChart, chart: Chart, hidden: Sequence[int] = ()) -> None:
    main.set_title({"name": chart.title})
    main.set_size(CHART_SIZE)
    legend: dict[str, Any] = {"position": "bottom"}
    if hidden:
        legend["delete_series"] = list(hidden)
    main.set_legend(legend)
