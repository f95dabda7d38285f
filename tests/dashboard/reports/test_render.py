"""The export renderers on a report built by hand: what a reader gets back from each file.

CSV and Excel are read back with the csv module and openpyxl, the charts from the xlsx's own XML,
the PDF's text and images with pypdf. The PDF draws its charts with the real kaleido and Chromium."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import plotly.io as pio
import pytest
from pypdf import PdfReader

from dashboard.reports.model import Chart, ChartKind, Column, Format, Metric, Report, table
from dashboard.reports.render import export
from dashboard.reports.render.csv import render_csv
from dashboard.reports.render.figures import EMPTY_TEXT, figure
from dashboard.reports.render.pdf import render_pdf
from dashboard.reports.render.xlsx import MONEY_FORMAT, render_xlsx

GENERATED = datetime(2026, 1, 15, 8, 5, tzinfo=UTC)
DAY0 = date(2026, 1, 5)
SHOP = "<Tom & Jerry's>"
TINY = Decimal("0.00123400")
EIGHT = Decimal("0.00000001")  # str() would write 1E-8


def daily_table():
    rows = []
    for i in range(10):
        rows.append(
            (
                DAY0 + timedelta(days=i),
                40 + i,
                Decimal("100.5") + i,
                None if i == 3 else 0.1 + i / 100,
                Decimal("110") + i,
                Decimal("100") + i,
                Decimal("120.25") + i,
                2.5 + i / 10,
            )
        )
    return table(
        "daily",
        "Daily orders and revenue",
        [
            Column("day", "Day", Format.date),
            Column("orders", "Orders", Format.integer),
            Column("revenue", "Revenue", Format.money),
            Column("conversion", "Conversion", Format.ratio),
            Column("forecast", "Forecast", Format.money),
            Column("lower", "Lower bound", Format.money),
            Column("upper", "Upper bound", Format.money),
            Column("items", "Items per order", Format.number),
        ],
        rows,
    )


CURRENCIES = ("USDT", "BTC", "ETH")


def currency_table():
    rows = [
        (DAY0 + timedelta(days=i), c, Decimal(n + 1) * Decimal("10.05") + i)
        for i in range(5)
        for n, c in enumerate(CURRENCIES)
        if not (c == "ETH" and i == 0)  # ETH starts a day late: a hole the pivot must leave empty
    ]
    return table(
        "revenue_by_currency",
        "Revenue by currency",
        [
            Column("day", "Day", Format.date),
            Column("currency", "Currency", Format.text),
            Column("revenue", "Revenue", Format.money),
        ],
        rows,
    )


SHOP_ROWS = [
    (SHOP, TINY, 3, 0.5, datetime(2026, 1, 6, 9, 30, tzinfo=UTC)),
    ("Big Bazaar", Decimal("1234.5"), 12, 0.25, datetime(2026, 1, 7, 23, 59, tzinfo=UTC)),
    ("Satoshi's dust", EIGHT, 1, None, None),
]


def shops_table():
    return table(
        "shops",
        "Top shops",
        [
            Column("shop", "Shop", Format.text),
            Column("revenue", "Revenue", Format.money),
            Column("orders", "Orders", Format.integer),
            Column("share", "Share of revenue", Format.ratio),
            Column("last_order_at", "Last order", Format.datetime),
        ],
        SHOP_ROWS,
        note="Shops with a paid order in the period.",
    )


def empty_table():
    return table(
        "empty",
        "Refunds",
        [Column("day", "Day", Format.date), Column("refunds", "Refunds", Format.money)],
        [],
    )


CHARTS = (
    Chart("orders", "Orders and revenue", "daily", "day", ("orders",), ChartKind.line, y2=("revenue",)),
    Chart("shops_bar", "Revenue per shop", "shops", "shop", ("revenue",), ChartKind.bar),
    Chart(
        "by_currency",
        "Revenue by currency",
        "revenue_by_currency",
        "day",
        ("revenue",),
        ChartKind.stacked_bar,
        series="currency",
    ),
    Chart(
        "forecast", "Revenue forecast", "daily", "day", ("forecast",), ChartKind.area, band=("lower", "upper")
    ),
    Chart("orders_pie", "Orders per shop", "shops", "shop", ("orders",), ChartKind.pie),
    Chart("orders_revenue", "Revenue against orders", "shops", "orders", ("revenue",), ChartKind.scatter),
)
BAR_Y2 = Chart(
    "orders_bars", "Orders (bars) and revenue", "daily", "day", ("orders",), ChartKind.bar, y2=("revenue",)
)
EMPTY_CHART = Chart("refunds", "Refunds per day", "empty", "day", ("refunds",), ChartKind.line)

METRICS = (
    Metric("Revenue", Decimal("1234.50"), Format.money, previous=Decimal("1200")),
    Metric("Orders", 42, Format.integer, previous=40),
    Metric("Conversion", 0.125, Format.ratio),
    Metric("Smallest sale", TINY, Format.money),
)


def make_report(tables=None, charts=None, section="analytics"):
    return Report(
        section=section,
        title="Analytics report",
        subtitle=f"2026-01-05 to 2026-01-14, shop {SHOP}",
        generated_at=GENERATED,
        freshness="Data loaded 2026-01-15 08:00 UTC (5 min ago).",
        metrics=METRICS,
        tables=(daily_table(), currency_table(), shops_table(), empty_table()) if tables is None else tables,
        charts=(*CHARTS, EMPTY_CHART) if charts is None else charts,
        notes=("Revenue counts paid orders only.",),
        extra={"filename_stamp": "2026-01-05_2026-01-14"},
    )


# --- CSV ----------------------------------------------------------------------------------------


def test_one_table_is_a_csv_with_exact_values():
    out = render_csv(make_report(tables=(shops_table(),), charts=()))
    assert (out.filename, out.media_type) == ("analytics_2026-01-05_2026-01-14.csv", "text/csv")
    rows = list(csv.DictReader(io.StringIO(out.content.decode("utf-8"))))
    assert rows == [
        {
            "shop": SHOP,
            "revenue": "0.00123400",
            "orders": "3",
            "share": "0.5",
            "last_order_at": "2026-01-06T09:30:00+00:00",
        },
        {
            "shop": "Big Bazaar",
            "revenue": "1234.5",
            "orders": "12",
            "share": "0.25",
            "last_order_at": "2026-01-07T23:59:00+00:00",
        },
        {"shop": "Satoshi's dust", "revenue": "0.00000001", "orders": "1", "share": "", "last_order_at": ""},
    ]
    assert [Decimal(r["revenue"]) for r in rows] == [r[1] for r in SHOP_ROWS]


def test_several_tables_are_a_zip_of_csvs_and_the_metrics():
    report = make_report()
    out = export(report, "csv")
    assert (out.filename, out.media_type) == ("analytics_2026-01-05_2026-01-14.zip", "application/zip")
    archive = zipfile.ZipFile(io.BytesIO(out.content))
    assert sorted(archive.namelist()) == sorted(
        ["daily.csv", "revenue_by_currency.csv", "shops.csv", "empty.csv", "metrics.csv"]
    )

    def read(name):
        return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))

    daily = read("daily.csv")
    assert len(daily) == 10
    assert daily[0] == {
        "day": "2026-01-05",
        "orders": "40",
        "revenue": "100.5",
        "conversion": "0.1",
        "forecast": "110",
        "lower": "100",
        "upper": "120.25",
        "items": "2.5",
    }
    assert daily[3]["conversion"] == ""
    assert [Decimal(r["revenue"]) for r in daily] == report.table("daily").values("revenue")
    assert len(read("revenue_by_currency.csv")) == 14
    assert archive.read("empty.csv").decode() == "day,refunds\r\n"
    assert read("metrics.csv") == [
        {"metric": "Revenue", "value": "1234.50", "previous": "1200", "format": "money"},
        {"metric": "Orders", "value": "42", "previous": "40", "format": "integer"},
        {"metric": "Conversion", "value": "0.125", "previous": "", "format": "ratio"},
        {"metric": "Smallest sale", "value": "0.00123400", "previous": "", "format": "money"},
    ]


# --- Excel --------------------------------------------------------------------------------------


def chart_xml(content: bytes) -> dict[str, str]:
    """Each native chart's XML by its title."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    charts = {}
    for name in archive.namelist():
        if re.fullmatch(r"xl/charts/chart\d+\.xml", name):
            xml = archive.read(name).decode()
            title = re.search(r"<a:t>([^<]*)</a:t>", xml)
            assert title, name
            charts[title.group(1)] = xml
    return charts


def refs(xml: str) -> list[str]:
    return re.findall(r"<c:f>([^<]*)</c:f>", xml)


def test_excel_has_a_summary_and_a_typed_sheet_per_table():
    out = render_xlsx(make_report())
    assert out.filename == "analytics_2026-01-05_2026-01-14.xlsx"
    assert out.media_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = openpyxl.load_workbook(io.BytesIO(out.content))
    assert book.sheetnames == ["Summary", "daily", "revenue_by_currency", "shops", "empty"]

    summary = book["Summary"]
    assert summary["A1"].value == "Analytics report"
    assert summary["A2"].value == f"2026-01-05 to 2026-01-14, shop {SHOP}"
    assert summary["B4"].value == datetime(2026, 1, 15, 8, 5)
    metrics = {summary.cell(r, 1).value: r for r in range(7, 11)}
    revenue = metrics["Revenue"]
    assert summary.cell(revenue, 2).value == 1234.5
    assert summary.cell(revenue, 2).number_format == MONEY_FORMAT
    assert summary.cell(revenue, 3).value == 1200
    assert summary.cell(revenue, 4).value == pytest.approx(0.02875)
    assert summary.cell(metrics["Conversion"], 2).number_format == "0.0%"

    shops = book["shops"]
    assert shops["A1"].value == "Top shops"
    assert [c.value for c in shops[3]][:5] == [
        "Shop",
        "Revenue",
        "Orders",
        "Share of revenue",
        "Last order (UTC)",
    ]
    assert shops.freeze_panes == "A4"
    assert shops.auto_filter.ref == "A3:E6"
    assert shops["A4"].value == SHOP
    assert shops["B4"].value == pytest.approx(0.001234)
    assert shops["B5"].value == 1234.5
    assert shops["B6"].value == pytest.approx(1e-8)
    assert {shops[f"B{r}"].number_format for r in (4, 5, 6)} == {MONEY_FORMAT}
    assert shops["C4"].value == 3
    assert shops["D4"].value == 0.5
    assert shops["D4"].number_format == "0.0%"
    assert shops["D6"].value is None
    assert shops["E4"].value == datetime(2026, 1, 6, 9, 30)
    assert shops["E4"].number_format == "yyyy-mm-dd hh:mm"
    assert shops["E6"].value is None

    daily = book["daily"]
    assert daily["A4"].value == datetime(2026, 1, 5)  # a real date: openpyxl reads dates as datetimes
    assert daily["A4"].number_format == "yyyy-mm-dd"
    assert daily["B4"].number_format == "#,##0"
    assert daily["D7"].value is None
    assert daily.column_dimensions["A"].width > 8

    empty = book["empty"]
    assert [empty["A3"].value, empty["B3"].value] == ["Day", "Refunds"]
    assert empty["A4"].value is None
    assert "No rows" in empty["A2"].value


def test_excel_charts_are_native_and_reference_the_sheets():
    out = render_xlsx(make_report())
    charts = chart_xml(out.content)
    # One per chart of a table with rows; the empty table's sheet says so instead.
    assert sorted(charts) == sorted(c.title for c in CHARTS)
    assert "no data" in openpyxl.load_workbook(io.BytesIO(out.content))["empty"]["D3"].value

    line = charts["Orders and revenue"]
    assert "<c:lineChart>" in line
    assert line.count("<c:valAx>") == 2  # revenue on a secondary axis
    assert refs(line) == [
        "daily!$B$3",
        "daily!$A$4:$A$13",
        "daily!$B$4:$B$13",
        "daily!$C$3",
        "daily!$A$4:$A$13",
        "daily!$C$4:$C$13",
    ]

    bar = charts["Revenue per shop"]
    assert "<c:barChart>" in bar and '<c:grouping val="clustered"/>' in bar
    assert "shops!$A$4:$A$6" in refs(bar) and "shops!$B$4:$B$6" in refs(bar)

    pie = charts["Orders per shop"]
    assert "<c:pieChart>" in pie and "shops!$C$4:$C$6" in refs(pie)

    scatter = charts["Revenue against orders"]
    assert "<c:scatterChart>" in scatter
    assert "shops!$C$4:$C$6" in refs(scatter) and "shops!$B$4:$B$6" in refs(scatter)

    # The long table is pivoted right of it (columns E on): a day column, one column per currency.
    stacked = charts["Revenue by currency"]
    assert '<c:grouping val="stacked"/>' in stacked
    assert refs(stacked) == [
        r
        for col in "FGH"
        for r in (
            f"revenue_by_currency!${col}$3",
            "revenue_by_currency!$E$4:$E$8",
            f"revenue_by_currency!${col}$4:${col}$8",
        )
    ]
    book = openpyxl.load_workbook(io.BytesIO(out.content))
    pivot = book["revenue_by_currency"]
    assert [pivot.cell(3, c).value for c in range(5, 9)] == [
        "Day",
        "USDT · Revenue",
        "BTC · Revenue",
        "ETH · Revenue",
    ]
    assert pivot["E4"].value == datetime(2026, 1, 5)
    assert pivot["F4"].value == pytest.approx(10.05)
    assert pivot["H4"].value is None  # no ETH on the first day
    assert pivot["H5"].value == pytest.approx(31.15)
    assert pivot["F4"].number_format == MONEY_FORMAT

    # The forecast's band: an area up to the lower bound and the band's height on it, and the line.
    area = charts["Revenue forecast"]
    assert "<c:areaChart>" in area and "<c:lineChart>" in area
    daily = book["daily"]
    block = [daily.cell(3, c).value for c in range(10, 15)]
    assert block == ["Day", "Forecast", "Lower bound", "Upper bound", "Lower bound to Upper bound"]
    assert daily["N4"].value == pytest.approx(20.25)  # upper - lower
    assert "daily!$N$4:$N$13" in refs(area) and "daily!$K$4:$K$13" in refs(area)


def test_excel_bar_chart_draws_its_secondary_axis_as_a_line():
    charts = chart_xml(render_xlsx(make_report(charts=(BAR_Y2,))).content)
    xml = charts["Orders (bars) and revenue"]
    bars, line = xml.split("<c:lineChart>")
    assert "<c:barChart>" in bars and "daily!$B$4:$B$13" in refs(bars)
    assert "daily!$C$4:$C$13" in refs(line)
    assert xml.count("<c:valAx>") == 2


# --- PDF ----------------------------------------------------------------------------------------


def pdf_text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_has_the_numbers_the_charts_and_page_numbers():
    report = make_report()
    out = render_pdf(report)
    assert (out.filename, out.media_type) == ("analytics_2026-01-05_2026-01-14.pdf", "application/pdf")
    reader = PdfReader(io.BytesIO(out.content))
    text = pdf_text(reader)
    pages = len(reader.pages)
    for expected in (
        "Analytics report",
        SHOP,
        "0.001234",  # Decimal("0.00123400"): no digit lost, the zeros after it are not digits
        "1,234.50",
        "0.00000001",
        "2026-01-06 09:30 UTC",
        "50.0%",
        "+2.9%",  # revenue against the previous period
        "Shops with a paid order in the period.",
        "No rows for these filters.",
        "Revenue counts paid orders only.",
        f"Page 1 of {pages}",
        f"Page {pages} of {pages}",
    ):
        assert expected in text, expected
    assert sum(len(page.images) for page in reader.pages) == len(report.charts)


def test_pdf_truncates_long_tables_with_a_note():
    rows = [(f"item-{i:04d}", Decimal(i) / 100) for i in range(1, 1001)]
    long = table("items", "Items", [Column("item", "Item"), Column("price", "Price", Format.money)], rows)
    reader = PdfReader(io.BytesIO(render_pdf(make_report(tables=(long,), charts=())).content))
    text = pdf_text(reader)
    assert "Showing the first 500 of 1,000 rows; 500 rows are left out" in text
    assert "item-0500" in text and "5.00" in text
    assert "item-0501" not in text
    assert sum(len(page.images) for page in reader.pages) == 0


def test_an_empty_table_renders_in_every_format():
    report = make_report(tables=(empty_table(),), charts=(EMPTY_CHART,))
    assert render_csv(report).content.decode() == "day,refunds\r\n"

    xlsx = render_xlsx(report)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["empty"]
    assert [sheet["A3"].value, sheet["B3"].value] == ["Day", "Refunds"]
    assert chart_xml(xlsx.content) == {}

    reader = PdfReader(io.BytesIO(render_pdf(report).content))
    assert "No rows for these filters." in pdf_text(reader)
    assert sum(len(page.images) for page in reader.pages) == 1  # the chart says there is no data


@pytest.mark.parametrize(
    ("browser", "says"),
    [("/nonexistent/chromium", "none was found"), ("/bin/false", "did not start or answer")],
)
def test_pdf_without_a_working_chromium_says_how_to_fix_it(browser, says):
    # In a process of its own: the kaleido server is one per process.
    script = (
        "from tests.dashboard.reports.test_render import make_report\n"
        "from dashboard.reports.render.pdf import render_pdf\n"
        "render_pdf(make_report())\n"
    )
    env = {**os.environ, "BROWSER_PATH": browser}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dashboard.reports.render.pdf.ChartRenderError")
    assert says in last and "apt-get install chromium" in last


# --- figures ------------------------------------------------------------------------------------


def chart(key):
    return next(c for c in (*CHARTS, EMPTY_CHART) if c.key == key)


def test_figures_of_every_kind():
    report = make_report()

    line = figure(report, chart("orders"))
    assert [t.type for t in line.data] == ["scatter", "scatter"]
    assert [t.yaxis for t in line.data] == ["y", "y2"]
    assert line.layout.yaxis2.overlaying == "y"
    assert list(line.data[1].y) == [100.5 + i for i in range(10)]  # Decimals drawn as floats
    assert line.layout.title.text == "Orders and revenue"

    bars = figure(make_report(charts=(BAR_Y2,)), BAR_Y2)
    assert [(t.type, t.yaxis) for t in bars.data] == [("bar", "y"), ("scatter", "y2")]

    bar = figure(report, chart("shops_bar"))
    assert [t.type for t in bar.data] == ["bar"]
    assert list(bar.data[0].x) == [SHOP, "Big Bazaar", "Satoshi's dust"]

    stacked = figure(report, chart("by_currency"))
    assert [t.name for t in stacked.data] == list(CURRENCIES)
    assert stacked.layout.barmode == "stack"
    assert len(stacked.data[2].x) == 4  # ETH's days only

    area = figure(report, chart("forecast"))
    assert len(area.data) == 3
    lower, upper, forecast = area.data
    assert upper.fill == "tonexty" and lower.showlegend is False
    assert list(lower.y) == [100.0 + i for i in range(10)] and list(upper.y) == [
        120.25 + i for i in range(10)
    ]
    assert forecast.name == "Forecast"

    pie = figure(report, chart("orders_pie"))
    assert [t.type for t in pie.data] == ["pie"]
    assert list(pie.data[0].values) == [3, 12, 1]

    scatter = figure(report, chart("orders_revenue"))
    assert scatter.data[0].mode == "markers"
    assert list(scatter.data[0].x) == [3, 12, 1]


def test_figure_of_an_empty_table_says_so_and_themes_apply():
    report = make_report()
    empty = figure(report, EMPTY_CHART)
    assert len(empty.data) == 0
    assert [a.text for a in empty.layout.annotations] == [EMPTY_TEXT]
    assert figure(report, chart("orders"), theme="dark").layout.template == pio.templates["plotly_dark"]
    assert figure(report, chart("orders")).layout.template == pio.templates["plotly_white"]
    with pytest.raises(ValueError, match="theme"):
        figure(report, chart("orders"), theme="sepia")


def test_figure_times_are_drawn_in_utc():
    tz = datetime(2026, 1, 6, 11, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))  # 12:30 there
    t = table("t", "T", [Column("at", "At", Format.datetime), Column("n", "N", Format.integer)], [(tz, 1)])
    report = make_report(tables=(t,), charts=())
    fig = figure(report, Chart("c", "C", "t", "at", ("n",)))
    assert list(fig.data[0].x) == [datetime(2026, 1, 6, 11, 30)]
