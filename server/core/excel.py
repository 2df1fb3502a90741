"""Excel files in and out (openpyxl): every list a clerk uses exports to .xlsx, and the park
is imported from the workbook staff already keep.

Reading treats the file as hostile: a size cap before openpyxl sees it, read-only mode (rows
streamed, no formulas evaluated), a row cap per sheet, and any failure to open it as a clear
`ValidationFailed` instead of a stack trace."""

from __future__ import annotations

import asyncio
import io
import tempfile
import zipfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import IO, Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from server.core.errors import ValidationFailed

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 200 * 1024 * 1024  # a zip bomb stops here, before openpyxl unpacks it
MAX_ROWS = 50_000

Cell = str | int | float | Decimal | date | datetime | bool | None


@dataclass(frozen=True, slots=True)
class Sheet:
    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Cell]]
    widths: Sequence[int] = ()


def _cell(value: Cell) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value == value.quantize(Decimal("0.0001")) else str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # Excel has no time zones: the caller localises
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _number(value):
        return "'" + value  # never let a tenant's name become a formula (CSV/Excel injection)
    return value


def _number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def write_xlsx(*sheets: Sheet) -> bytes:
    """A workbook of `sheets`, header row bold and frozen, written in streaming mode."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        ws.freeze_panes = "A2"
        for i, width in enumerate(sheet.widths or [max(10, 2 * len(h) + 2) for h in sheet.headers]):
            ws.column_dimensions[_column(i)].width = width
        header = []
        for title in sheet.headers:
            cell = WriteOnlyCell(ws, value=title)
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in sheet.rows:
            ws.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _column(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def read_xlsx(data: bytes, *, max_rows: int = MAX_ROWS) -> dict[str, list[list[Any]]]:
    """Every sheet's rows (values only, trailing empty rows dropped), by sheet title."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationFailed(f"文件过大（上限 {MAX_UPLOAD_BYTES // 1024 // 1024} MB）")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as packed:
            if sum(i.file_size for i in packed.infolist()) > MAX_UNPACKED_BYTES:
                raise ValidationFailed("文件解压后过大，不是正常的 Excel 文件")
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ValidationFailed("无法读取文件：请上传 Excel 2007 及以上的 .xlsx 文件") from exc
    sheets: dict[str, list[list[Any]]] = {}
    try:
        for ws in book.worksheets:
            rows: list[list[Any]] = []
            for row in ws.iter_rows(values_only=True):
                if len(rows) > max_rows:
                    raise ValidationFailed(f"工作表“{ws.title}”超过 {max_rows} 行")
                rows.append(list(row))
            while rows and all(v is None or str(v).strip() == "" for v in rows[-1]):
                rows.pop()
            sheets[ws.title] = rows
    finally:
        book.close()
    return sheets


# -- streamed exports ---------------------------------------------------------------------------
# A list of 100,000 rows is exported without holding it: rows arrive in chunks (an async
# iterable, read from the database page by page), each chunk is appended to openpyxl's
# write-only sheet (which spools its XML to a temporary file as it goes) in a worker thread,
# and the finished workbook is sent from its temporary file in pieces. Memory stays that of
# one chunk whatever the row count (bench/export.py).

MONEY_FORMAT = '"¥"#,##0.00'
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
SEND_BYTES = 256 * 1024


class Kind(StrEnum):
    TEXT = "text"
    MONEY = "money"  # integer fen, written as yuan (a number, format ¥0.00), never as text
    NUMBER = "number"  # int or Decimal, as it is
    DATETIME = "datetime"  # an aware or naive datetime (the caller localises)
    DATE = "date"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an export: its Chinese header, width (characters) and kind."""

    header: str
    kind: Kind = Kind.TEXT
    width: int = 0


@dataclass(frozen=True, slots=True)
class StreamSheet:
    """A sheet whose rows come as an iterable or an async iterable of row chunks (or rows)."""

    title: str
    columns: Sequence[Column]
    rows: AsyncIterable[Sequence[Sequence[Any]]] | Iterable[Sequence[Any]]
    chunked: bool = True  # `rows` yields lists of rows (False: yields rows)


def _money(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(int(fen)).scaleb(-2)


class _SheetWriter:
    """Appends rows to one write-only sheet, each cell converted and styled by its column."""

    def __init__(self, book: Workbook, title: str, columns: Sequence[Column]) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        self.ws = ws = book.create_sheet(title[:31])
        self._cell = WriteOnlyCell
        ws.freeze_panes = "A2"
        for i, column in enumerate(columns):
            ws.column_dimensions[_column(i)].width = column.width or max(
                10, 2 * len(column.header) + 2
            )
        bold = Font(bold=True)
        header = []
        for column in columns:
            cell = WriteOnlyCell(ws, value=column.header)
            cell.font = bold
            header.append(cell)
        ws.append(header)
        # One styled cell per kind; every cell of that kind shares its style array (a copy of
        # the few integers openpyxl keeps per cell), so styling costs no look-up per cell.
        self._styles: list[Any] = []
        for column in columns:
            fmt = {Kind.MONEY: MONEY_FORMAT, Kind.DATETIME: DATETIME_FORMAT,
                   Kind.DATE: DATE_FORMAT}.get(column.kind)  # fmt: skip
            if fmt is None:
                self._styles.append(None)
                continue
            probe = WriteOnlyCell(ws, value=None)
            probe.number_format = fmt
            self._styles.append(probe._style)
        self._kinds = [column.kind for column in columns]

    def append(self, rows: Iterable[Sequence[Any]]) -> int:
        ws, make, kinds, styles = self.ws, self._cell, self._kinds, self._styles
        n = 0
        for row in rows:
            out: list[Any] = []
            for value, kind, style in zip(row, kinds, styles, strict=False):
                if kind is Kind.TEXT:
                    out.append(_cell(value))
                    continue
                if kind is Kind.MONEY:
                    value = _money(value)
                elif kind is Kind.DATETIME and isinstance(value, datetime) and value.tzinfo:
                    value = value.replace(tzinfo=None)
                if value is None or style is None:
                    out.append(value)
                    continue
                cell = make(ws, value=value)
                cell._style = copy(style)
                out.append(cell)
            ws.append(out)
            n += 1
        return n


async def stream_xlsx(*sheets: StreamSheet) -> AsyncIterator[bytes]:
    """The workbook of `sheets`, in pieces of `SEND_BYTES`: every row is written before the
    first piece comes (a failure while reading rows raises before anything is sent)."""
    spool = await build_xlsx(*sheets)
    try:
        while piece := await asyncio.to_thread(spool.read, SEND_BYTES):
            yield piece
    finally:
        spool.close()


async def build_xlsx(*sheets: StreamSheet) -> IO[bytes]:
    """The workbook of `sheets` in a temporary file, positioned at its start."""
    book = Workbook(write_only=True)
    for sheet in sheets:
        writer = _SheetWriter(book, sheet.title, sheet.columns)
        if isinstance(sheet.rows, AsyncIterable):
            async for chunk in sheet.rows:
                rows = chunk if sheet.chunked else [chunk]
                await asyncio.to_thread(writer.append, rows)  # type: ignore[arg-type]
        else:
            rows = sheet.rows if not sheet.chunked else (r for c in sheet.rows for r in c)
            await asyncio.to_thread(writer.append, rows)  # type: ignore[arg-type]
    spool = tempfile.TemporaryFile()
    try:
        await asyncio.to_thread(book.save, spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool
