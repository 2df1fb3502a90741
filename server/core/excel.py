"""Excel files in and out (openpyxl): every list a clerk uses exports to .xlsx, and the park
is imported from the workbook staff already keep.

Reading treats the file as hostile: a size cap before openpyxl sees it, read-only mode (rows
streamed, no formulas evaluated), a row cap per sheet, and any failure to open it as a clear
`ValidationFailed` instead of a stack trace."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

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
