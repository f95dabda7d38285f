"""A report as a PDF (reportlab platypus): the headline numbers, the charts as images drawn by
kaleido from the same plotly figures the pages show, and the tables, with page numbers.

kaleido drives a headless Chromium. Starting one takes seconds, so one persistent kaleido server is
started on first use and kept for the process (stopped at exit); every render goes through it."""

from __future__ import annotations

import atexit
import io
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, cast
from xml.sax.saxutils import escape

import kaleido
import plotly.graph_objects as go
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from dashboard.reports import model
from dashboard.reports.model import Format, Metric, Report
from dashboard.reports.render import Export, base_filename
from dashboard.reports.render.cells import NUMERIC, change, display, utc
from dashboard.reports.render.figures import figure

PDF_TYPE = "application/pdf"
MAX_ROWS = 500  # a PDF is for reading; the CSV and Excel exports hold every row
MARGIN = 14 * mm
CHART_PX = (900, 400)  # the figure's size in CSS pixels; drawn at CHART_SCALE for print
CHART_SCALE = 1.5  # about 230 dpi across an A4 page; 2 costs reportlab twice the time to embed
RENDER_TIMEOUT_S = 60.0  # one figure, the browser's start included
CHROMIUM_FIX = (
    "install it with `apt-get install chromium` (.ci/setup does), or set BROWSER_PATH to a Chrome or "
    "Chromium binary"
)
ZEBRA = colors.HexColor("#F3F5F9")
HEADER_BG = colors.HexColor("#E2E6EE")
GREY = colors.HexColor("#555555")


class ChartRenderError(RuntimeError):
    """A chart could not be drawn: no Chromium, or it failed to start or answer."""


def render_pdf(report: Report) -> Export:
    pagesize = landscape(A4) if _wide(report) else A4
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=pagesize,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=report.title,
        subject=report.subtitle,
        creator="dashboard reports",
    )
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body")
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    footer = f"{report.title}  ·  generated {utc(report.generated_at):%Y-%m-%d %H:%M} UTC"
    doc.build(_story(report, doc.width), canvasmaker=_numbered(footer))
    return Export(buffer.getvalue(), f"{base_filename(report)}.pdf", PDF_TYPE)


# --- the story --------------------------------------------------------------------------------

_BASE = getSampleStyleSheet()
STYLES = {
    "title": ParagraphStyle("title", parent=_BASE["Title"], alignment=0, spaceAfter=4),
    "subtitle": ParagraphStyle("subtitle", parent=_BASE["Normal"], fontSize=11, leading=14),
    "small": ParagraphStyle("small", parent=_BASE["Normal"], fontSize=8, leading=10, textColor=GREY),
    "caption": ParagraphStyle(
        "caption", parent=_BASE["Normal"], fontSize=8, leading=10, textColor=GREY, keepWithNext=1
    ),
    "h2": ParagraphStyle("h2", parent=_BASE["Heading2"], spaceBefore=10, spaceAfter=4, keepWithNext=1),
    "label": ParagraphStyle("label", parent=_BASE["Normal"], fontSize=8, leading=10, textColor=GREY),
    "value": ParagraphStyle(
        "value", parent=_BASE["Normal"], fontName="Helvetica-Bold", fontSize=13, leading=16
    ),
    "cell": ParagraphStyle("cell", parent=_BASE["Normal"], fontSize=8, leading=9.5),
    "head": ParagraphStyle(
        "head", parent=_BASE["Normal"], fontName="Helvetica-Bold", fontSize=8, leading=9.5
    ),
    "note": ParagraphStyle("note", parent=_BASE["Normal"], fontSize=9, leading=12),
    "bullet": ParagraphStyle("bullet", parent=_BASE["Normal"], fontSize=9, leading=12, leftIndent=10),
}
STYLES["head_right"] = ParagraphStyle("head_right", parent=STYLES["head"], alignment=TA_RIGHT)


def _p(text: str, style: str) -> Paragraph:
    # Paragraph text is markup: a shop called "<Tom & Jerry>" must be escaped to print as itself.
    return Paragraph(escape(text), STYLES[style])


def _story(report: Report, width: float) -> list[Flowable]:
    story: list[Flowable] = [
        _p(report.title, "title"),
        _p(report.subtitle, "subtitle"),
        Spacer(1, 2 * mm),
        _p(report.freshness, "small"),
        _p(f"Generated at {utc(report.generated_at):%Y-%m-%d %H:%M} UTC", "small"),
        Spacer(1, 4 * mm),
    ]
    if report.metrics:
        story.append(_metrics(report.metrics, width))
    if report.charts:
        story.append(_p("Charts", "h2"))
        images = chart_pngs([figure(report, c) for c in report.charts])
        height = width * CHART_PX[1] / CHART_PX[0]
        story.extend(Image(io.BytesIO(png), width=width, height=height) for png in images)
    for t in report.tables:
        story.extend(_table(t, width))
    if report.notes:
        story.append(_p("Notes", "h2"))
        story.extend(Paragraph(escape(n), STYLES["bullet"], bulletText="•") for n in report.notes)
    return story


def _metrics(metrics: Sequence[Metric], width: float) -> Table:
    per_row = 4 if width < 200 * mm else 5
    cells: list[list[Any]] = []
    for m in metrics:
        content: list[Flowable] = [_p(m.label, "label"), _p(display(m.value, m.format) or "n/a", "value")]
        if m.previous is not None:
            delta = change(m)
            before = f"previous {display(m.previous, m.format)}" + (f" ({delta})" if delta else "")
            content.append(_p(before, "label"))
        cells.append(content)
    rows = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    rows[-1] += [[]] * (per_row - len(rows[-1]))
    grid = Table(rows, colWidths=[width / per_row] * per_row)
    grid.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOX", (0, 0), (-1, -1), 0.5, colors.lightgrey),
                ("INNERGRID", (0, 0), (-1, -1), 0.5, colors.lightgrey),
                ("BACKGROUND", (0, 0), (-1, -1), ZEBRA),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return grid


def _table(t: model.Table, width: float) -> list[Flowable]:
    head: list[Flowable] = [_p(t.title, "h2")]
    if t.note:
        head.append(_p(t.note, "caption"))
    if not t.rows:
        return [KeepTogether([*head, _p("No rows for these filters.", "note")])]
    shown = t.rows[:MAX_ROWS]
    numeric = [c.format in NUMERIC for c in t.columns]
    header = [
        _p(c.label + _utc(c.format), "head_right" if n else "head")
        for c, n in zip(t.columns, numeric, strict=True)
    ]
    body: list[list[Any]] = [
        [
            display(v, c.format) if n else _p(display(v, c.format), "cell")
            for v, c, n in zip(row, t.columns, numeric, strict=True)
        ]
        for row in shown
    ]
    grid = Table([header, *body], colWidths=_widths(t, width), repeatRows=1)
    style: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), "Helvetica"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.grey),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    style += [("ALIGN", (i, 1), (i, -1), "RIGHT") for i, n in enumerate(numeric) if n]
    grid.setStyle(TableStyle(style))
    out: list[Flowable] = [*head, grid]
    if len(t.rows) > len(shown):
        left = len(t.rows) - len(shown)
        out.append(
            _p(
                f"Showing the first {len(shown):,} of {len(t.rows):,} rows; {left:,} rows are left out "
                "(the CSV and Excel exports have them all).",
                "note",
            )
        )
    return out


def _utc(fmt: Format) -> str:
    return " (UTC)" if fmt is Format.datetime else ""


def _chars(t: model.Table) -> list[int]:
    """Each column's longest text (capped: long text wraps), a guess at the width it needs."""
    return [
        min(40, max([len(c.label) // 2 + 4, *(len(display(v, c.format)) for v in t.values(c.name)[:200])]))
        for c in t.columns
    ]


def _widths(t: model.Table, width: float) -> list[float]:
    chars = _chars(t)
    total = sum(chars) or 1
    return [width * n / total for n in chars]


def _wide(report: Report) -> bool:
    # Helvetica 8 pt is about 1.6 mm a character; more than a portrait frame holds goes landscape.
    portrait = A4[0] - 2 * MARGIN
    return any(sum(_chars(t)) * 1.6 * mm > portrait for t in report.tables)


def _numbered(footer: str) -> type[Canvas]:
    """A canvas that knows the page count when it draws each footer: pages are kept until save."""

    class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab is untyped
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                width, _ = self._pagesize
                self.setFont("Helvetica", 7.5)
                self.setFillColor(GREY)
                self.drawString(MARGIN, MARGIN / 2, footer)
                self.drawRightString(width - MARGIN, MARGIN / 2, f"Page {number} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas


# --- the charts' images -------------------------------------------------------------------------

_server_lock = threading.Lock()  # one start, and one render at a time (the server's queues are shared)
_server_started = False
_browser_path = ""


def chart_pngs(figures: Sequence[go.Figure]) -> list[bytes]:
    """PNG images of the figures, drawn by the process's kaleido server (started on first use)."""
    width, height = CHART_PX
    opts = {"format": "png", "width": width, "height": height, "scale": CHART_SCALE}
    with _server_lock:
        _start_server()
        return [_render(fig, opts) for fig in figures]


def _browser() -> str:
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:  # a kaleido without choreographer: let it look for itself
        return "a browser kaleido finds"
    found = Chromium.find_browser(skip_local=False)  # BROWSER_PATH first, as kaleido does
    if not found or not os.access(found, os.X_OK):
        raise ChartRenderError(f"the PDF's charts need Chromium and none was found: {CHROMIUM_FIX}.")
    return str(found)


def _start_server() -> None:
    global _server_started, _browser_path
    if _server_started:
        return
    _browser_path = _browser()
    # No MathJax: the charts have no formulas, and it would be fetched from a CDN.
    kaleido.start_sync_server(n=1, timeout=RENDER_TIMEOUT_S, mathjax=False, silence_warnings=True)
    _server_started = True
    # Registered after kaleido's own exit hook, so this one runs first (atexit is last in, first out).
    atexit.register(_stop_server)


def _stop_server() -> None:
    global _server_started
    if not _server_started:
        return
    # Shutting down logs at INFO, and at exit the log handlers' streams may be closed already.
    for name in ("kaleido", "choreographer"):
        logging.getLogger(name).setLevel(logging.WARNING)
    kaleido.stop_sync_server(silence_warnings=True)
    _server_started = False


def _server_alive() -> bool:
    # kaleido's server thread dies if the browser fails to start, and a call then waits forever:
    # watch the thread (a private attribute; without it only the timeout below applies).
    thread = getattr(getattr(kaleido, "_global_server", None), "_thread", None)
    return not isinstance(thread, threading.Thread) or thread.is_alive()


def _render(fig: go.Figure, opts: dict[str, Any]) -> bytes:
    answer: queue.Queue[object] = queue.Queue(maxsize=1)

    def call() -> None:
        try:
            answer.put(kaleido.calc_fig_sync(fig, opts=opts))
        except BaseException as e:  # handed to the waiting thread
            answer.put(e)

    threading.Thread(target=call, name="kaleido-call", daemon=True).start()
    deadline = time.monotonic() + RENDER_TIMEOUT_S + 10
    while True:
        try:
            result = answer.get(timeout=0.25)
            break
        except queue.Empty:
            if not _server_alive() or time.monotonic() > deadline:
                _abandon_server()
                raise ChartRenderError(
                    f"Chromium ({_browser_path}) did not start or answer to draw a chart: {CHROMIUM_FIX}."
                ) from None
    if isinstance(result, BaseException):
        raise ChartRenderError(f"kaleido could not draw a chart: {result}") from result
    return cast(bytes, result)


def _abandon_server() -> None:
    """Forget a dead or stuck server so the next render starts a new one."""
    global _server_started
    _server_started = False
    closer = threading.Thread(target=kaleido.stop_sync_server, kwargs={"silence_warnings": True}, daemon=True)
    closer.start()
    closer.join(timeout=5)
