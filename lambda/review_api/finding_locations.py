"""Where Macie located an object's findings, in a few words for the review page (issue 12).

The evaluator keeps, per object and detection type, at most 10 locations (``findings.locations`` of a
review.jsonl line): cells ``{row, column, columnName?, cellReference?}``, records ``{recordIndex,
jsonPath}``, line ranges ``{"lines": [start, end]}`` and pages ``{"page": n}``. Never a value: there
is none to show. The text is plain; the page escapes it.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Mapping

MAX_NAME = 80  # a column name or JSON path, as shown
MAX_PARTS = 10


def _clean(text: Any, limit: int = MAX_NAME) -> str:
    cleaned = "".join("?" if unicodedata.category(c)[0] == "C" else c for c in str(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _plural(word: str, numbers: list[str]) -> str:
    return f"{word}{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"


def _cells(cells: list[Mapping[str, Any]]) -> list[str]:
    """Cells of a workbook by reference; CSV/TSV cells grouped by column: ``column card_no (rows 2, 5)``."""
    references = [_clean(c["cellReference"]) for c in cells if isinstance(c.get("cellReference"), str)]
    columns: dict[str, list[str]] = {}
    for cell in cells:
        if isinstance(cell.get("cellReference"), str):
            continue
        name = cell.get("columnName")
        column = f"column {_clean(name)}" if isinstance(name, str) and name else f"column {_number(cell.get('column')) or '?'}"
        row = _number(cell.get("row"))
        columns.setdefault(column, [])
        if row is not None:
            columns[column].append(str(row))
    parts = [_plural("cell", references)] if references else []
    parts += [f"{column} ({_plural('row', rows)})" if rows else column for column, rows in columns.items()]
    return parts


def _records(records: list[Mapping[str, Any]]) -> list[str]:
    paths = []
    for record in records:
        path = _clean(record.get("jsonPath")) if isinstance(record.get("jsonPath"), str) else "?"
        index = _number(record.get("recordIndex"))
        paths.append(f"{path} (record {index})" if index else path)
    return [("JSON paths " if len(paths) > 1 else "JSON path ") + ", ".join(paths)]


def _lines(ranges: list[Any]) -> list[str]:
    spans = []
    for span in ranges:
        start, end = (_number(span[0]), _number(span[1])) if isinstance(span, list) and len(span) == 2 else (None, None)
        if start is not None:
            spans.append(str(start) if end in (None, start) else f"{start}\u2013{end}")
    if not spans:
        return []
    return [("lines " if len(spans) > 1 or "\u2013" in spans[0] else "line ") + ", ".join(spans)]


def _pages(pages: list[Any]) -> list[str]:
    numbers = [str(n) for n in (_number(p) for p in pages) if n is not None]
    return [_plural("page", numbers)] if numbers else []


def describe(locations: Any) -> str:
    """``column card_no (rows 2, 5, 9)``, ``JSON path $.a.card``, ``lines 4, 7–8``, ``page 3``: the
    locations of one detection type in a few words; "" when none is known."""
    if not isinstance(locations, list):
        return ""
    entries = [entry for entry in locations[:MAX_PARTS] if isinstance(entry, Mapping)]
    cells = [e for e in entries if "row" in e or "column" in e or "cellReference" in e]
    records = [e for e in entries if "jsonPath" in e or "recordIndex" in e]
    parts = _cells(cells) if cells else []
    parts += _records(records) if records else []
    parts += _lines([e["lines"] for e in entries if "lines" in e])
    parts += _pages([e["page"] for e in entries if "page" in e])
    return "; ".join(parts)


def type_text(name: Any, count: Any, locations: Any) -> str:
    """One detection type as the page lists it: ``CREDIT_CARD_NUMBER: 3 at column card_no (rows 2, 5, 9)``;
    a trailing ``…`` when Macie counted more occurrences than are located."""
    text = f"{_clean(name, 200)}: {count}"
    where = describe(locations)
    if not where:
        return text
    located = len(locations) if isinstance(locations, list) else 0
    more = ", \u2026" if isinstance(count, int) and count > located else ""
    return f"{text} at {where}{more}"
