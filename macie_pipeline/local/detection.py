"""Sensitive data detection the way Amazon Macie documents it, for the local Macie. Pure: no AWS.

What is modelled, and from which Macie documentation:

* **Managed data identifiers** (:data:`MANAGED_IDENTIFIERS`, a table: add rows for more types).
  Ids, categories and keyword requirements follow the reference table
  https://docs.aws.amazon.com/macie/latest/user/mdis-reference.html (seen: ``AWS_CREDENTIALS``
  needs a keyword; credit card numbers are ``CREDIT_CARD_NUMBER`` near a keyword and
  ``CREDIT_CARD_NUMBER_(NO_KEYWORD)`` otherwise). That ``USA_SOCIAL_SECURITY_NUMBER`` needs a
  keyword and ``EMAIL_ADDRESS`` does not is assumed, not confirmed against that table. The keyword
  lists are examples, not Macie's full lists, and the patterns approximate Macie's detectors: card
  numbers need a known issuer prefix and a valid Luhn check digit; US Social Security numbers
  reject area 000, 666 and 900-999, group 00 and serial 0000; an AWS secret access key is a
  40-character base64-alphabet string with mixed character classes. A digit run that is part of a
  larger number (joined to digits by a decimal point, or in scientific notation) is neither a card
  number nor a Social Security number, so the fractional part of a decimal such as
  ``0.4539148803436467`` is not reported (assumed of Macie; it keeps clean numeric data clean here).
* **Keyword proximity for managed identifiers**
  (https://docs.aws.amazon.com/macie/latest/user/managed-data-identifiers-keywords.html): a
  keyword is case-insensitive and must be within 30 characters (inclusive) of the data; in CSV/TSV
  data it may instead be in the column name, in JSON, JSON Lines and Parquet data in the name of an
  element of the path to the field.
* **Custom data identifiers** (TestCustomDataIdentifier / CreateCustomDataIdentifier API
  reference, e.g. https://docs.rs/aws-sdk-macie2/0.31.0/aws_sdk_macie2/operation/test_custom_data_identifier/struct.TestCustomDataIdentifierInput.html,
  and https://docs.aws.amazon.com/macie/latest/user/custom-data-identifiers.html): keywords are
  case-insensitive and one must *precede* the match, with at most ``maximumMatchDistance``
  (default 50) characters "between the end of at least one complete keyword and the end of the
  text that matches the regex"; in structured data a keyword in the column or field name also
  counts. Ignore words are case-sensitive and exclude a match that *contains* one of them (the
  API reference and CloudFormation say "contains", not "equals").
* **Allow lists** (https://docs.aws.amazon.com/macie/latest/APIReference/allow-lists.html,
  https://docs.aws.amazon.com/macie/latest/user/allow-lists.html): text is not reported by any
  managed or custom identifier if it exactly matches a complete entry of a predefined-text list
  (not case-sensitive) or completely matches an allow list's regex.
* **Severity**: findings from custom data identifiers without severity levels are always MEDIUM
  (CreateCustomDataIdentifier ``severityLevels``: "If you don't specify any values ... Macie assigns
  the MEDIUM severity"; CloudFormation cannot set levels, so none are modelled). For managed
  identifiers Macie scores by category and number of occurrences
  (https://docs.aws.amazon.com/macie/latest/user/findings-severity.html); that page's table could
  not be read from here, so :data:`MANAGED_SEVERITY` is an unverified reading of it (credentials
  and financial information HIGH from one occurrence, personal information MEDIUM below 100
  occurrences and HIGH from 100). A finding gets the highest severity of its parts, and the type
  ``SensitiveData:S3Object/Multiple`` when it has more than one category (custom identifiers
  being one).
* **Analysis status** reasons are the ``ClassificationResultStatus.reason`` codes of the Macie API
  model (``UNSUPPORTED_FILE_TYPE_EXCEPTION``, ``MALFORMED_FILE``, ``UNABLE_TO_PARSE_FILE`` ...).
  An empty object is analysed (COMPLETE, nothing found). Occurrence locations follow the API's
  ``Occurrences`` shape: ``lineRanges`` for text, ``cells`` (header is row 1, columns from 1) for
  CSV/TSV, ``records`` (``recordIndex`` from 0, always 0 for a JSON file, and a JSONPath) for JSON,
  JSON Lines and Parquet, ``cells`` with ``cellReference`` (``Sheet2!C5``, as the model's ``Cell``
  documents) for Excel workbooks, and ``pages`` with ``pageNumber`` for PDFs (the model reserves
  ``Page.lineRange`` "for future use"). Assumed, not confirmed: a workbook's first row names its
  columns (and is analysed too); an encrypted or damaged PDF is SKIPPED with ``MALFORMED_FILE`` and
  a damaged workbook with ``MALFORMED_OR_FILE_SIZE_EXCEEDS_LIMIT`` (the model's reason for Office files).
* **Encodings**: text is read in the encoding its byte order mark names (UTF-8, UTF-16 or UTF-32,
  either byte order), else UTF-8, as the integrity check reads it.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import csv
import functools
import gzip
import io
import itertools
import json
import re
import shutil
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

CREDENTIALS = "CREDENTIALS"
FINANCIAL = "FINANCIAL_INFORMATION"
PERSONAL = "PERSONAL_INFORMATION"
CUSTOM = "CUSTOM_IDENTIFIER"

COMPLETE, PARTIAL, SKIPPED = "COMPLETE", "PARTIAL", "SKIPPED"
UNSUPPORTED_FILE_TYPE = "UNSUPPORTED_FILE_TYPE_EXCEPTION"
MALFORMED_FILE = "MALFORMED_FILE"
UNABLE_TO_PARSE_FILE = "UNABLE_TO_PARSE_FILE"

MANAGED_KEYWORD_DISTANCE = 30
DEFAULT_MAXIMUM_MATCH_DISTANCE = 50
FINDING_OCCURRENCES = 15  # locations a finding reports per type
RESULT_OCCURRENCES = 1000  # locations a sensitive data discovery result reports per type

SEVERITY_SCORE = {"LOW": 1, "MEDIUM": 2, "HIGH": 3}
# Per category: (minimum number of occurrences, severity), highest threshold first. Unverified.
MANAGED_SEVERITY: dict[str, tuple[tuple[int, str], ...]] = {
    CREDENTIALS: ((1, "HIGH"),),
    FINANCIAL: ((1, "HIGH"),),
    PERSONAL: ((100, "HIGH"), (1, "MEDIUM")),
}
CUSTOM_SEVERITY = "MEDIUM"

FINDING_TYPES = {
    CREDENTIALS: "SensitiveData:S3Object/Credentials",
    FINANCIAL: "SensitiveData:S3Object/Financial",
    PERSONAL: "SensitiveData:S3Object/Personal",
    CUSTOM: "SensitiveData:S3Object/CustomIdentifier",
}
MULTIPLE = "SensitiveData:S3Object/Multiple"


# ------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class CustomIdentifierSpec:
    """A custom data identifier as CloudFormation (``AWS::Macie::CustomDataIdentifier``) defines it."""

    id: str
    arn: str
    name: str
    regex: str
    keywords: tuple[str, ...] = ()
    ignore_words: tuple[str, ...] = ()
    maximum_match_distance: int = DEFAULT_MAXIMUM_MATCH_DISTANCE
    description: str | None = None

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.regex)


@dataclass(frozen=True)
class AllowListSpec:
    """An allow list: a regex, or the entries of a predefined-text list (read from S3 by the caller).

    ``s3_words_list`` is the (bucket, key) the entries came from, reported by GetAllowList.
    """

    id: str
    arn: str
    name: str
    regex: str | None = None
    words: tuple[str, ...] | None = None
    description: str | None = None
    s3_words_list: tuple[str, str] | None = None

    @functools.cached_property
    def _folded_words(self) -> frozenset[str]:
        return frozenset(word.casefold() for word in self.words or ())

    def allows(self, text: str) -> bool:
        if self.regex is not None and re.fullmatch(self.regex, text):
            return True
        return text.casefold() in self._folded_words


REQUIRED, ABSENT, NOT_NEEDED = "required", "absent", "not needed"


@dataclass(frozen=True)
class ManagedIdentifier:
    """One managed data identifier: a pattern, a check of each match, and its keyword rule.

    ``keyword_rule``: REQUIRED (a keyword must be in proximity), ABSENT (reported only when none is:
    the ``_(NO_KEYWORD)`` variants) or NOT_NEEDED.
    """

    id: str
    category: str
    pattern: re.Pattern[str]
    keywords: tuple[str, ...] = ()
    keyword_rule: str = NOT_NEEDED
    check: Callable[[str], bool] = lambda _text: True
    literal: str = ""  # text that every match contains (a fast pre-check), if any


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


_CARD_PREFIX = re.compile(
    r"4|5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])|35(?:2[89]|[3-8]\d)"
)


def _valid_card(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) is not None and luhn_valid(digits)


def _valid_ssn(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _mixed_characters(text: str) -> bool:
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() or c in "/+" for c in text)


# A digit run that is part of a larger number is not an identifier: not next to a decimal point that
# joins it to digits ("0.4539148803436467", ".4539148803436467", "4539148803436467.5"; "No.4539..."
# after a word is not a number), nor inside scientific notation ("1e+123456789", "123456789e-3").
# Each identifier's own pattern keeps digits (and, for card numbers, letters) off both ends.
_NUMBER_BEFORE = r"(?:(?<=[A-Za-z]\.)|(?<!\.))(?<!\d[eE])(?<!\d[eE][+-])"
_NUMBER_AFTER = r"(?!\.\d)(?![eE][+-]?\d)"
_CARD = re.compile(
    r"(?<![\w-])"
    + _NUMBER_BEFORE
    + r"(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{5}|\d{13,19})"
    + r"(?![\w-])"
    + _NUMBER_AFTER
)
_CARD_KEYWORDS = ("account number", "american express", "amex", "bank card", "card", "cc#", "ccn", "credit", "debit",
                  "diners club", "discover", "jcb", "mastercard", "pan", "payment card", "visa")

MANAGED_IDENTIFIERS: dict[str, ManagedIdentifier] = {m.id: m for m in (
    ManagedIdentifier(
        "AWS_CREDENTIALS", CREDENTIALS,
        re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
        keywords=("aws_secret_access_key", "credentials", "secret access key", "secret key", "set-awscredential"),
        keyword_rule=REQUIRED, check=_mixed_characters,
    ),
    ManagedIdentifier("CREDIT_CARD_NUMBER", FINANCIAL, _CARD, _CARD_KEYWORDS, REQUIRED, _valid_card),
    ManagedIdentifier("CREDIT_CARD_NUMBER_(NO_KEYWORD)", FINANCIAL, _CARD, _CARD_KEYWORDS, ABSENT, _valid_card),
    ManagedIdentifier(
        "EMAIL_ADDRESS", PERSONAL,
        re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])"),
        literal="@",
    ),
    ManagedIdentifier(
        "USA_SOCIAL_SECURITY_NUMBER", PERSONAL,
        re.compile(r"(?<![\d-])" + _NUMBER_BEFORE + r"\d{3}([ -]?)\d{2}\1\d{4}(?![\d-])" + _NUMBER_AFTER),
        keywords=("social security", "ssa number", "ssn", "ss#"),
        keyword_rule=REQUIRED, check=_valid_ssn,
    ),
)}
# The local stand-in for Macie's recommended set: every identifier modelled here.
RECOMMENDED = tuple(MANAGED_IDENTIFIERS)


# ------------------------------------------------------------------------------------------ content
# Objects are read as a stream, never whole: text in chunks, CSV/TSV and JSON Lines row by row,
# Parquet by row group, workbooks row by row and PDFs page by page (Parquet, workbooks and PDFs need
# to seek, so they are first spooled to a temporary file). Detection runs on bounded batches of what
# is read, and keeps the counts and at most RESULT_OCCURRENCES locations per type.
CHUNK_CHARS = 1 << 20  # text read and searched at a time
READ_BYTES = 1 << 18  # bytes read from the object at a time
BATCH_CHARS = 1 << 19  # structured values searched at a time: their characters, plus VALUE_OVERHEAD a value
VALUE_OVERHEAD = 64  # about what Python needs for a short string besides its characters
BATCH_FIELDS = 10_000  # and at most this many values
SPOOL_BYTES = 8 << 20  # a spooled object stays in memory up to this size, then goes to a temporary file
MALFORMED_OFFICE_FILE = "MALFORMED_OR_FILE_SIZE_EXCEEDS_LIMIT"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_MIME = "application/pdf"


@dataclass(frozen=True)
class Field:
    """One value of structured data: its text, the names a keyword may also be in (the column name,
    or the names along a JSON path), and its location as Macie reports it (``cells``, ``records`` or
    ``pages``)."""

    text: str
    names: str
    kind: str
    location: dict


@dataclass(frozen=True)
class Extraction:
    """What can be analysed in an object, read whole (small objects, tests): ``content`` is the text of
    unstructured data or the fields of structured data; ``status``/``reason`` say whether all of it
    could be read. The local Macie itself streams: see :func:`analyse_object`."""

    status: str
    reason: str | None
    mime_type: str | None
    content: str | tuple[Field, ...]


class _Rows:
    """A batch of CSV/TSV rows: cell texts, and their column names and locations when asked."""

    def __init__(self, header: list[str], first_row: int, rows: list[list[str]]) -> None:
        self.header, self.first_row, self.rows = header, first_row, rows
        self.texts = [cell for row in rows for cell in row]
        self._ends: list[int] | None = None

    def _where(self, index: int) -> tuple[int, int]:
        if self._ends is None:
            self._ends = list(itertools.accumulate(len(row) for row in self.rows))
        row = bisect.bisect_right(self._ends, index)
        return row, index - (self._ends[row - 1] if row else 0)

    def names(self, index: int) -> str:
        column = self._where(index)[1]
        return self.header[column] if column < len(self.header) else ""

    def all_names(self) -> Iterable[str]:
        return self.header

    def locate(self, index: int) -> tuple[str, dict]:
        row, column = self._where(index)
        location: dict[str, Any] = {"row": self.first_row + row, "column": column + 1}
        name = self.header[column] if column < len(self.header) else ""
        if name:
            location["columnName"] = name
        return "cells", location


class _Fields:
    """A batch of :class:`Field` values."""

    def __init__(self, fields: list[Field]) -> None:
        self.fields = fields
        self.texts = [item.text for item in fields]

    def names(self, index: int) -> str:
        return self.fields[index].names

    def all_names(self) -> Iterable[str]:
        return {item.names for item in self.fields}

    def locate(self, index: int) -> tuple[str, dict]:
        item = self.fields[index]
        return item.kind, dict(item.location)


class Reading:
    """An object being read: its MIME type, and its status and reason once ``pieces`` (text chunks,
    or batches of values) have been consumed. A reader that fails sets SKIPPED or PARTIAL and stops."""

    def __init__(self, mime_type: str | None, status: str = COMPLETE, reason: str | None = None) -> None:
        self.mime_type, self.status, self.reason = mime_type, status, reason
        self.pieces: Iterable[str | _Rows | _Fields] = ()

    def fail(self, reason: str, status: str = SKIPPED, mime_type: str | None = None) -> None:
        self.status, self.reason = status, reason
        self.mime_type = mime_type or self.mime_type


_MIME = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "json": "application/json",
    "jsonl": "application/json",
    "ndjson": "application/json",
    "parquet": "application/parquet",
    "xlsx": XLSX_MIME,
    "pdf": PDF_MIME,
}
_CONTENT_TYPES = {"text/csv": "csv", "text/tab-separated-values": "tsv", "application/json": "json", "application/x-ndjson": "jsonl",
                  XLSX_MIME: "xlsx", PDF_MIME: "pdf"}
# Byte order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one), as the integrity check reads them.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def extension_of(key: str) -> str:
    """The file name extension of a key ("" when there is none), as Macie reports ``s3Object.extension``."""
    name = key.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[1] if "." in name.strip(".") else ""


class _RawReader(io.RawIOBase):
    """A stream with only ``read(n)`` (such as botocore's StreamingBody), for io.BufferedReader."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _buffered(stream: Any) -> Any:
    return stream if hasattr(stream, "peek") else io.BufferedReader(_RawReader(stream), READ_BYTES)


def _head(binary: Any, size: int) -> bytes:
    """The first ``size`` bytes (fewer at the end of the stream), without consuming them."""
    head = binary.peek(size)
    return head[:size]


def read_object(stream: Any, key: str, content_type: str | None = None) -> Reading:
    """Read an object as Macie would: gunzip, then Parquet, Excel workbook, PDF, CSV/TSV, JSON, JSON
    Lines or text, in the encoding a byte order mark names (UTF-8, UTF-16, UTF-32), else UTF-8.

    The type comes from the content first (gzip, Parquet and PDF magic bytes), then the key's
    extension, then ``content_type``. Bytes that cannot be read give SKIPPED (or PARTIAL when only
    some JSON Lines or PDF pages could be read) with Macie's reason code, once the pieces are read.
    """
    binary = _buffered(stream)
    head = _head(binary, 5)
    if head[:2] == b"\x1f\x8b":
        return _gunzipped(binary, key)
    kind = extension_of(key).lower()
    if kind not in _MIME:
        kind = _CONTENT_TYPES.get((content_type or "").split(";")[0].strip().lower(), kind)
    if kind == "parquet" or head[:4] == b"PAR1":
        return _reading(_MIME["parquet"], _parquet, binary)
    if kind == "pdf" or head == b"%PDF-":
        return _reading(PDF_MIME, _pdf, binary)
    if kind == "xlsx":
        return _reading(XLSX_MIME, _workbook, binary)
    reading = Reading(_MIME.get(kind, "text/plain"))
    reading.pieces = _text_of_kind(_text(binary, reading, lines=kind in ("csv", "tsv", "jsonl", "ndjson")), kind, reading)
    return reading


def _reading(mime: str, reader: Callable[[Any, Reading], Iterator[Any]], binary: Any) -> Reading:
    reading = Reading(mime)
    reading.pieces = reader(binary, reading)
    return reading


def _gunzipped(binary: Any, key: str) -> Reading:
    """A gzip object: what its content gives, under the key without ``.gz``, reported as gzip."""
    stem = key[: -len(extension_of(key)) - 1] if extension_of(key) in ("gz", "gzip") else key
    reading = Reading("application/gzip")
    try:
        inner = read_object(gzip.GzipFile(fileobj=binary, mode="rb"), stem, None)
    except (OSError, EOFError, zlib.error):
        reading.fail(MALFORMED_FILE)
        return reading

    def pieces() -> Iterator[Any]:
        try:
            yield from inner.pieces
        except (OSError, EOFError, zlib.error):
            inner.fail(MALFORMED_FILE)
        reading.status, reading.reason = inner.status, inner.reason

    reading.pieces = pieces()
    return reading


def _text(binary: Any, reading: Reading, *, lines: bool) -> Iterator[str]:
    """Decoded text in chunks of CHUNK_CHARS, or line by line (line ends kept): SKIPPED as not text when
    it does not decode or holds NUL characters."""
    head = _head(binary, 4)
    encoding = next((name for mark, name in _BYTE_ORDER_MARKS if head.startswith(mark)), "utf-8-sig")
    text = io.TextIOWrapper(binary, encoding=encoding, errors="strict", newline="")
    try:
        while chunk := (text.readline() if lines else text.read(CHUNK_CHARS)):
            if "\x00" in chunk:
                break
            yield chunk
        else:
            return
    except UnicodeDecodeError:
        pass
    reading.fail(UNSUPPORTED_FILE_TYPE, mime_type="application/octet-stream")


def _text_of_kind(chunks: Iterator[str], kind: str, reading: Reading) -> Iterator[Any]:
    """Decoded text, read as the ``kind`` (extension) says."""
    if kind in ("csv", "tsv"):
        return _delimited(chunks, "," if kind == "csv" else "\t", reading)
    if kind == "json":
        return _json_document(chunks, reading)
    if kind in ("jsonl", "ndjson"):
        return _json_lines(chunks, reading)
    return chunks


def _delimited(lines: Iterator[str], delimiter: str, reading: Reading) -> Iterator[_Rows]:
    rows = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(rows, [])
        batch: list[list[str]] = []
        size, first = 0, 2
        for row in rows:
            batch.append(row)
            size += VALUE_OVERHEAD * len(row) + sum(map(len, row))
            if size >= BATCH_CHARS:
                yield _Rows(header, first, batch)
                first, batch, size = first + len(batch), [], 0
        if batch:
            yield _Rows(header, first, batch)
    except csv.Error:
        if reading.status != SKIPPED:
            reading.fail(UNABLE_TO_PARSE_FILE)


def _field_batches(fields: Iterable[Field]) -> Iterator[_Fields]:
    batch: list[Field] = []
    size = 0
    for item in fields:
        batch.append(item)
        size += VALUE_OVERHEAD + len(item.text)
        if size >= BATCH_CHARS or len(batch) >= BATCH_FIELDS:
            yield _Fields(batch)
            batch, size = [], 0
    if batch:
        yield _Fields(batch)


def _json_document(chunks: Iterator[str], reading: Reading) -> Iterator[_Fields]:
    """A JSON document is parsed whole (a value cannot be located before the document is parsed)."""
    text = "".join(chunks)
    if reading.status == SKIPPED:
        return
    try:
        value = json.loads(text) if text.strip() else None
    except ValueError:
        reading.fail(UNABLE_TO_PARSE_FILE)
        return
    del text
    yield from _field_batches(_json_fields(value, 0))


def _json_lines(chunks: Iterator[str], reading: Reading) -> Iterator[_Fields]:
    counts = {"bad": 0, "good": 0}

    def fields() -> Iterator[Field]:
        index = 0
        for chunk in chunks:
            for line in chunk.splitlines() or [""]:
                if line.strip():
                    try:
                        value = json.loads(line)
                    except ValueError:
                        counts["bad"] += 1
                    else:
                        counts["good"] += 1
                        yield from _json_fields(value, index)
                index += 1

    yield from _field_batches(fields())
    if counts["bad"] and reading.status == COMPLETE:
        reading.fail(UNABLE_TO_PARSE_FILE, PARTIAL if counts["good"] else SKIPPED)


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _json_path(parts: Sequence[str | int]) -> str:
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_NAME.fullmatch(part):
            path += f".{part}"
        else:
            path += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return path


def _json_fields(value: Any, record_index: int, parts: tuple[str | int, ...] = ()) -> Iterator[Field]:
    if isinstance(value, dict):
        for name, sub in value.items():
            yield from _json_fields(sub, record_index, (*parts, str(name)))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _json_fields(sub, record_index, (*parts, i))
    elif value is not None:
        text = value if isinstance(value, str) else json.dumps(value)
        names = " ".join(p for p in parts if isinstance(p, str))
        yield Field(text, names, "records", {"recordIndex": record_index, "jsonPath": _json_path(parts)})


@contextlib.contextmanager
def _spooled(binary: Any) -> Iterator[Any]:
    """The rest of the stream in a seekable file (memory up to SPOOL_BYTES, then a temporary file)."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        shutil.copyfileobj(binary, spool, READ_BYTES)
        spool.seek(0)
        yield spool


def _parquet_readable(spool: Any) -> bool:
    """A Parquet file starts and ends with PAR1, the footer length just before the final magic."""
    size = spool.seek(0, io.SEEK_END)
    if size < 12:
        return False
    spool.seek(0)
    start = spool.read(4)
    spool.seek(size - 8)
    tail = spool.read(8)
    spool.seek(0)
    footer = int.from_bytes(tail[:4], "little")
    return start == b"PAR1" and tail[4:] == b"PAR1" and 0 < footer <= size - 12


def _quietly(call: Callable[[], Any]) -> Any:
    # fastparquet prints what it thinks of corrupt metadata; pandas warns that the engine is deprecated.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _parquet_frames(spool: Any) -> Iterator[Any]:
    """The row groups of a Parquet file, one frame at a time (stdout is redirected only while reading)."""
    import fastparquet

    groups = _quietly(lambda: iter(fastparquet.ParquetFile(spool).iter_row_groups()))
    while (frame := _quietly(lambda: next(groups, None))) is not None:
        yield frame


def _parquet(binary: Any, reading: Reading) -> Iterator[_Fields]:
    import pandas

    def fields(frames: Iterator[Any]) -> Iterator[Field]:
        index = 0
        for frame in frames:
            for row in frame.itertuples(index=False, name=None):
                for column, value in zip(frame.columns, row, strict=True):
                    if value is None or value is pandas.NA or value is pandas.NaT or (isinstance(value, float) and value != value):
                        continue
                    name = str(column)
                    text = value if isinstance(value, str) else str(value)
                    yield Field(text, name, "records", {"recordIndex": index, "jsonPath": _json_path((name,))})
                index += 1

    with _spooled(binary) as spool:
        if not _parquet_readable(spool):
            reading.fail(UNABLE_TO_PARSE_FILE)
            return
        try:
            yield from _field_batches(fields(_parquet_frames(spool)))
        except Exception:  # noqa: BLE001 - fastparquet raises many kinds of errors for bad bytes
            reading.fail(UNABLE_TO_PARSE_FILE)


def _cell_reference(sheet: str, row: int, column: int) -> str:
    """An absolute cell reference as Macie reports it (``Sheet2!C5``); a sheet name other than letters,
    digits and underscores is quoted as Excel quotes it."""
    from openpyxl.utils import get_column_letter

    name = sheet if _PLAIN_NAME.fullmatch(sheet) else "'" + sheet.replace("'", "''") + "'"
    return f"{name}!{get_column_letter(column)}{row}"


def _sheet_fields(sheet: Any) -> Iterator[Field]:
    """Every value of a worksheet, row by row; the first row names the columns (as in CSV), and is analysed too."""
    header: dict[int, str] = {}
    for row in sheet.iter_rows():
        for cell in row:
            if cell.value is None or not hasattr(cell, "row"):
                continue
            text = cell.value if isinstance(cell.value, str) else str(cell.value)
            if cell.row == 1:
                header[cell.column] = text
            name = header.get(cell.column, "") if cell.row > 1 else ""
            location: dict[str, Any] = {"cellReference": _cell_reference(sheet.title, cell.row, cell.column),
                                        "row": cell.row, "column": cell.column}
            if name:
                location["columnName"] = name
            yield Field(text, name, "cells", location)


def _workbook(binary: Any, reading: Reading) -> Iterator[_Fields]:
    """An Excel workbook (.xlsx), every worksheet, streamed by openpyxl's read-only mode."""
    import openpyxl

    with _spooled(binary) as spool:
        try:
            workbook = openpyxl.load_workbook(spool, read_only=True, data_only=True)
            try:
                for sheet in workbook.worksheets:
                    yield from _field_batches(_sheet_fields(sheet))
            finally:
                workbook.close()
        except Exception:  # noqa: BLE001 - a damaged workbook fails in zipfile, XML parsing or openpyxl
            reading.fail(MALFORMED_OFFICE_FILE)


def _pdf(binary: Any, reading: Reading) -> Iterator[_Fields]:
    """A PDF, page by page (``pages`` locations: the page number; Macie reserves the page's line range).
    An encrypted or damaged PDF is SKIPPED (MALFORMED_FILE); a page that cannot be read makes it PARTIAL."""
    import pypdf

    with _spooled(binary) as spool:
        try:
            pdf = pypdf.PdfReader(spool, strict=False)
            pages = len(pdf.pages) if not pdf.is_encrypted else 0
        except Exception:  # noqa: BLE001 - pypdf raises many kinds of errors for bad bytes
            pages = 0
        if not pages:
            reading.fail(MALFORMED_FILE)
            return
        failed = 0
        for number in range(1, pages + 1):
            try:
                text = pdf.pages[number - 1].extract_text() or ""
            except Exception:  # noqa: BLE001
                failed += 1
                continue
            yield _Fields([Field(text, "", "pages", {"pageNumber": number})])
        if failed:
            reading.fail(MALFORMED_FILE, PARTIAL if failed < pages else SKIPPED)


def extract_text(data: bytes, key: str, content_type: str | None = None) -> Extraction:
    """:func:`read_object` on bytes, read whole: the text, or every field (for small objects and tests)."""
    reading = read_object(io.BytesIO(data), key, content_type)
    pieces = list(reading.pieces)
    if pieces and isinstance(pieces[0], str):
        content: str | tuple[Field, ...] = "".join(pieces)
    else:
        content = tuple(Field(batch.texts[i], batch.names(i), *batch.locate(i)) for batch in pieces for i in range(len(batch.texts)))
    if reading.status == SKIPPED:
        content = "" if not content or isinstance(content, str) else ()
    return Extraction(reading.status, reading.reason, reading.mime_type, content)


# ---------------------------------------------------------------------------------------- detection
@dataclass
class Detection:
    """The occurrences of one managed type, or of one custom identifier, in one object."""

    type: str  # managed data identifier id, or the custom identifier's name
    category: str
    count: int = 0
    occurrences: list[tuple[str, dict]] = field(default_factory=list)  # (kind, location), at most RESULT_OCCURRENCES
    custom: CustomIdentifierSpec | None = None

    def add(self, kind: str, location: dict) -> None:
        self.count += 1
        if len(self.occurrences) < RESULT_OCCURRENCES:
            self.occurrences.append((kind, location))

    def add_located(self, locate: Callable[[], tuple[str, dict]]) -> None:
        """Count one occurrence; its location is worked out only while locations are still kept."""
        self.count += 1
        if len(self.occurrences) < RESULT_OCCURRENCES:
            self.occurrences.append(locate())


@functools.lru_cache(maxsize=256)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True)), re.IGNORECASE)


def _keyword_spans(text: str, keywords: tuple[str, ...], start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of every keyword occurrence in ``text[start:end]``; keywords that overlap (``credit``,
    ``credit card``) all count."""
    end = len(text) if end is None else end
    return [(m.start(), m.end()) for keyword in keywords for m in _keyword_pattern((keyword,)).finditer(text, max(start, 0), end)]


def _names_have_keyword(names: str, keywords: tuple[str, ...]) -> bool:
    return bool(keywords) and bool(names) and _keyword_pattern(keywords).search(names) is not None


def _managed_keyword_near(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(
        (k_end <= start and start - k_end <= MANAGED_KEYWORD_DISTANCE) or (k_start >= end and k_start - end <= MANAGED_KEYWORD_DISTANCE)
        for k_start, k_end in spans
    )


def _custom_keyword_before(spans: list[tuple[int, int]], start: int, end: int, distance: int) -> bool:
    return any(k_end <= start and end - k_end <= distance for _k_start, k_end in spans)


def _allowed(text: str, allow_lists: Sequence[AllowListSpec]) -> bool:
    return any(allow.allows(text) for allow in allow_lists)


def _longest(keywords: Iterable[str]) -> int:
    return max((len(k) for k in keywords), default=0)


def _may_contain(lowered: str | None, keywords: tuple[str, ...]) -> bool:
    """False only when no keyword can be in text whose lower case (ASCII text only) is ``lowered``."""
    if lowered is None or not all(k.isascii() for k in keywords):
        return True
    return any(k.lower() in lowered for k in keywords)


class _Scanner:
    """Runs managed and custom identifiers over text chunks and batches of values, keeping per type the
    count and at most RESULT_OCCURRENCES locations. Results are those of searching each value (and
    the whole text) at once; batches only skip, with exact pre-checks, what cannot match: a type that
    needs a keyword where none is, an email address where there is no ``@``."""

    def __init__(self, managed: Iterable[ManagedIdentifier], custom: Iterable[CustomIdentifierSpec],
                 allow_lists: Sequence[AllowListSpec]) -> None:
        self.managed, self.custom, self.allow_lists = list(managed), list(custom), allow_lists
        self.groups: dict[re.Pattern[str], list[ManagedIdentifier]] = {}
        for identifier in self.managed:
            self.groups.setdefault(identifier.pattern, []).append(identifier)
        self.found: dict[str, Detection] = {}

    def results(self) -> list[Detection]:
        order = [m.id for m in self.managed] + [c.id for c in self.custom]
        return [self.found[key] for key in order if key in self.found]

    # ------------------------------------------------------------------------------ one match
    def managed_match(self, group: list[ManagedIdentifier], text: str, start: int, end: int, names: str,
                      locate: Callable[[], tuple[str, dict]]) -> None:
        value = text[start:end]
        spans: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        for identifier in group:
            if not identifier.check(value) or _allowed(value, self.allow_lists):
                continue
            near = False
            if identifier.keywords:
                reach = MANAGED_KEYWORD_DISTANCE + _longest(identifier.keywords)
                if identifier.keywords not in spans:
                    spans[identifier.keywords] = _keyword_spans(text, identifier.keywords, start - reach, end + reach)
                near = _names_have_keyword(names, identifier.keywords) or _managed_keyword_near(spans[identifier.keywords], start, end)
            if (identifier.keyword_rule == REQUIRED and not near) or (identifier.keyword_rule == ABSENT and near):
                continue
            self.found.setdefault(identifier.id, Detection(identifier.id, identifier.category)).add_located(locate)

    def custom_match(self, spec: CustomIdentifierSpec, text: str, start: int, end: int, names: str,
                     locate: Callable[[], tuple[str, dict]]) -> None:
        value = text[start:end]
        if not value or any(word in value for word in spec.ignore_words) or _allowed(value, self.allow_lists):
            return
        if spec.keywords and not _names_have_keyword(names, spec.keywords):
            spans = _keyword_spans(text, spec.keywords, end - spec.maximum_match_distance - _longest(spec.keywords), start)
            if not _custom_keyword_before(spans, start, end, spec.maximum_match_distance):
                return
        self.found.setdefault(spec.id, Detection(spec.name, CUSTOM, custom=spec)).add_located(locate)

    # ------------------------------------------------------------------------------ pre-checks
    def matchers(self, lowered: str | None, names_lowered: str | None, text: str) -> Iterator[tuple[re.Pattern[str], Any]]:
        """(pattern, group or custom identifier) of every identifier that may match in ``text``."""
        for pattern, group in self.groups.items():
            if any(self._may_match(m.keywords if m.keyword_rule == REQUIRED else (), m.literal, lowered, names_lowered, text)
                   for m in group):
                yield pattern, group
        for spec in self.custom:
            if self._may_match(spec.keywords, "", lowered, names_lowered, text):
                yield spec.pattern, spec

    @staticmethod
    def _may_match(keywords: tuple[str, ...], literal: str, lowered: str | None, names_lowered: str | None, text: str) -> bool:
        if literal and literal not in text:
            return False
        return not keywords or _may_contain(lowered, keywords) or _may_contain(names_lowered, keywords)

    # ------------------------------------------------------------------------------ values
    def values(self, batch: _Rows | _Fields) -> None:
        """A batch of values, each searched on its own (its column or path names count as keywords)."""
        texts = batch.texts
        joined = "\n".join(texts)
        names = "\n".join(batch.all_names())
        lowered = joined.lower() if joined.isascii() else None
        names_lowered = names.lower() if names.isascii() else None
        for pattern, target in self.matchers(lowered, names_lowered, joined):
            for index in itertools.compress(range(len(texts)), map(pattern.search, texts)):
                text, item_names = texts[index], batch.names(index)
                locate = functools.partial(batch.locate, index)
                for match in pattern.finditer(text):
                    if isinstance(target, CustomIdentifierSpec):
                        self.custom_match(target, text, match.start(), match.end(), item_names, locate)
                    else:
                        self.managed_match(target, text, match.start(), match.end(), item_names, locate)


class _TextScanner:
    """Text fed in chunks, searched as if it were one string.

    The text is searched a region of CHUNK_CHARS at a time, in a window that holds BEHIND characters
    before the region (keywords before a match, lookbehinds) and at least ``ahead`` after it (the rest
    of a match that starts in the region, keywords after it). Each identifier's search resumes where
    its last match ended, as one ``finditer`` over the whole text would. A match that reaches the end
    of the window's lookahead makes the window grow: matches up to MAX_AHEAD characters long are
    found exactly as in the whole text.
    """

    GUARD = 4096  # characters a match must end before the end of a window (lookaheads, keywords after it)
    MAX_AHEAD = 16 << 20

    def __init__(self, scanner: _Scanner) -> None:
        self.scanner = scanner
        keywords = [k for m in scanner.managed for k in m.keywords] + [k for c in scanner.custom for k in c.keywords]
        distances = [MANAGED_KEYWORD_DISTANCE] + [c.maximum_match_distance for c in scanner.custom]
        self.behind = self.GUARD + max(distances) + _longest(keywords)
        self.ahead = 16 * self.GUARD
        self.pending: list[str] = []
        self.pending_size = 0
        self.buffer = ""
        self.base = 0  # offset of buffer[0] in the text
        self.region = 0  # offset where the next region starts
        self.lines_before = 0  # line breaks in text[:base]
        self.line_start = 0  # offset of the line holding text[base]
        self.resume: dict[int, int] = {}  # per identifier: where its next search starts
        self._newlines: list[int] | None = None

    def feed(self, chunk: str) -> None:
        self.pending.append(chunk)
        self.pending_size += len(chunk)
        if self.pending_size >= CHUNK_CHARS:
            self._take()
            while self.base + len(self.buffer) - self.region >= CHUNK_CHARS + self.ahead:
                if not self._search(self.region + CHUNK_CHARS, final=False):
                    self.ahead *= 2
                    break

    def close(self) -> None:
        self._take()
        self._search(self.base + len(self.buffer), final=True)

    def _take(self) -> None:
        self.buffer += "".join(self.pending)
        self.pending, self.pending_size, self._newlines = [], 0, None

    def _search(self, region_end: int, final: bool) -> bool:
        """Search the region [self.region, region_end); False (nothing done) when the window is too short."""
        text, base = self.buffer, self.base
        lowered = text.lower() if text.isascii() else None
        hits, resume = [], {}
        for pattern, target in self.scanner.matchers(lowered, "", text):
            for match in pattern.finditer(text, max(self.region, self.resume.get(id(target), 0)) - base):
                if match.start() + base >= region_end:
                    break
                if not final and match.end() > len(text) - self.GUARD and self.ahead < self.MAX_AHEAD:
                    return False
                hits.append((target, match.start(), match.end()))
                resume[id(target)] = match.end() + base
        self.resume.update(resume)
        for target, start, end in hits:
            locate = functools.partial(self._locate, start, end)
            if isinstance(target, CustomIdentifierSpec):
                self.scanner.custom_match(target, text, start, end, "", locate)
            else:
                self.scanner.managed_match(target, text, start, end, "", locate)
        self.region = region_end
        self._trim(max(base, region_end - self.behind))
        return True

    def _locate(self, start: int, end: int) -> tuple[str, dict]:
        """``lineRanges`` (lines and column from 1) of buffer[start:end]."""
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.buffer)]
        first = bisect.bisect_left(self._newlines, start)
        last = bisect.bisect_left(self._newlines, max(start, end - 1))
        line_start = self._newlines[first - 1] + 1 + self.base if first else self.line_start
        return "lineRanges", {"start": self.lines_before + first + 1, "end": self.lines_before + last + 1,
                              "startColumn": self.base + start - line_start + 1}

    def _trim(self, new_base: int) -> None:
        cut = new_base - self.base
        if cut <= 0:
            return
        self.lines_before += self.buffer.count("\n", 0, cut)
        newline = self.buffer.rfind("\n", 0, cut)
        if newline >= 0:
            self.line_start = self.base + newline + 1
        self.buffer, self.base, self._newlines = self.buffer[cut:], new_base, None


def _scan(scanner: _Scanner, pieces: Iterable[str | _Rows | _Fields]) -> None:
    text: _TextScanner | None = None
    for piece in pieces:
        if isinstance(piece, str):
            text = text or _TextScanner(scanner)
            text.feed(piece)
        else:
            scanner.values(piece)
    if text is not None:
        text.close()


def detect(
    content: str | Iterable[Field],
    *,
    managed: Iterable[ManagedIdentifier] = (),
    custom: Iterable[CustomIdentifierSpec] = (),
    allow_lists: Sequence[AllowListSpec] = (),
) -> list[Detection]:
    """Every managed type and custom identifier that matched, in the order given, with counts and locations."""
    scanner = _Scanner(managed, custom, allow_lists)
    _scan(scanner, [content] if isinstance(content, str) else _field_batches(content))
    return scanner.results()


@dataclass(frozen=True)
class Analysis:
    """What the local Macie found in one object: how it was read, and what it detected."""

    status: str
    reason: str | None
    mime_type: str | None
    detections: list[Detection]


def analyse_object(
    stream: Any,
    key: str,
    content_type: str | None = None,
    *,
    managed: Iterable[ManagedIdentifier] = (),
    custom: Iterable[CustomIdentifierSpec] = (),
    allow_lists: Sequence[AllowListSpec] = (),
) -> Analysis:
    """Read ``stream`` (a binary file or botocore's StreamingBody) and detect as it is read, in bounded
    memory. Nothing is reported for an object that could not be analysed (SKIPPED)."""
    scanner = _Scanner(managed, custom, allow_lists)
    reading = read_object(stream, key, content_type)
    _scan(scanner, reading.pieces)
    detections = [] if reading.status == SKIPPED else scanner.results()
    return Analysis(reading.status, reading.reason, reading.mime_type, detections)


def count_matches(spec: CustomIdentifierSpec, sample_text: str) -> int:
    """How many times ``spec`` matches ``sample_text`` (TestCustomDataIdentifier's matchCount)."""
    return sum(d.count for d in detect(sample_text, custom=[spec]))


# ------------------------------------------------------------------------------------------ scoring
def category_severity(category: str, occurrences: int) -> str:
    if category == CUSTOM:
        return CUSTOM_SEVERITY
    for minimum, severity in MANAGED_SEVERITY[category]:
        if occurrences >= minimum:
            return severity
    raise ValueError(f"no severity for {occurrences} occurrence(s) of {category}")


def severity(detections: Sequence[Detection]) -> str:
    """The finding's severity (LOW|MEDIUM|HIGH): the highest of its categories and custom identifiers."""
    totals: dict[str, int] = {}
    levels = []
    for detection in detections:
        if detection.category == CUSTOM:
            levels.append(CUSTOM_SEVERITY)
        else:
            totals[detection.category] = totals.get(detection.category, 0) + detection.count
    levels.extend(category_severity(category, count) for category, count in totals.items())
    return max(levels, key=SEVERITY_SCORE.__getitem__)


def finding_type(detections: Sequence[Detection]) -> str:
    categories = {d.category for d in detections}
    return FINDING_TYPES[categories.pop()] if len(categories) == 1 else MULTIPLE


def occurrences(detection: Detection, limit: int) -> dict:
    """The wire-form ``Occurrences`` of the first ``limit`` locations."""
    out: dict[str, list[dict]] = {}
    for kind, location in detection.occurrences[:limit]:
        out.setdefault(kind, []).append(location)
    return out


def classification_result(detections: Sequence[Detection], limit: int) -> dict:
    """``sensitiveData``, ``customDataIdentifiers`` and ``additionalOccurrences`` of a result, in wire form."""
    by_category: dict[str, list[Detection]] = {}
    custom = []
    for detection in detections:
        if detection.category == CUSTOM:
            custom.append(detection)
        else:
            by_category.setdefault(detection.category, []).append(detection)
    return {
        "additionalOccurrences": any(d.count > limit for d in detections),
        "sensitiveData": [
            {
                "category": category,
                "totalCount": sum(d.count for d in items),
                "detections": [{"type": d.type, "count": d.count, "occurrences": occurrences(d, limit)} for d in items],
            }
            for category, items in by_category.items()
        ],
        "customDataIdentifiers": {
            "totalCount": sum(d.count for d in custom),
            "detections": [
                {"arn": d.custom.arn, "name": d.custom.name, "count": d.count, "occurrences": occurrences(d, limit)}
                for d in custom
                if d.custom is not None
            ],
        },
    }
