"""Pure integrity checks of one object: format from the key, streaming parsers, checksum verification.

Nothing here talks to AWS. :func:`check_object` takes any binary stream with ``read(n)`` (the handler
passes the S3 ``StreamingBody``) and returns the contract's result
``{"status", "format", "reason", "rows", "checksum"}`` (see docs/CONTRACTS.md, integrity_check).

Memory stays bounded whatever the object's size:

* CSV, TSV, JSON Lines and fixed-width text are parsed by pandas ``chunksize`` readers, so at most
  ``chunk_rows`` rows (plus pandas' read buffer) are in memory at a time; gzip is decompressed on the fly
  by :class:`gzip.GzipFile` over the stream.
* A whole JSON document cannot be streamed by pandas: it is read up to ``max_json_bytes`` (decompressed)
  and parsed with :mod:`json`; a larger document (or one nested too deeply for the parser) is UNCHECKED.
* Parquet needs random access: the object is spooled to a temporary file (if it fits in the free space
  of ``tmp_dir``, else UNCHECKED) and read one row group at a time with fastparquet (no pyarrow); a
  file using a feature fastparquet cannot decode is UNCHECKED, any other read failure CORRUPT.

Decisions (documented in the result's ``reason``):

* A 0-byte object, or a gzip stream that decompresses to nothing, is CORRUPT ("empty object"). So is a
  text object of blank lines only (nothing pandas can find columns in) and a JSON Lines object without
  any record.
* CSV, TSV and fixed-width files have a header row; a header with zero data rows is VALID with
  ``rows == 0`` (a legitimate export of an empty result set).
* Text formats are read in the encoding their byte order mark names (UTF-8, UTF-16 or UTF-32, little or
  big endian), else as UTF-8: what spreadsheets, databases and log shippers write. Text that is not
  valid in that encoding is CORRUPT, and the reason names the encoding and how to fix the export. A row
  with more fields than the header is CORRUPT (``on_bad_lines="error"``); a row with fewer fields is
  padded by pandas and accepted.
* ``rows`` counts data rows: CSV/TSV/fixed-width rows after the header, JSON Lines records, Parquet rows,
  and for a JSON document the length of a top-level array (1 for any other top-level value).

Checksums: when the object version has a *full-object* checksum that the standard library can compute
(SHA256, SHA1 or CRC32), every raw byte read from the stream goes through :class:`HashingReader`; after
parsing, the unread remainder is drained through the hash and the digest compared. A mismatch makes the
object CORRUPT ("checksum mismatch") whatever the parser said. Objects of unknown format and UNCHECKED
ones are still streamed through the hash when there is a checksum to verify. Composite multipart checksums (``-N``
values, ``ChecksumType: COMPOSITE``, or a multipart ``-N`` ETag without ``ChecksumType: FULL_OBJECT``) are
not verified: the part boundaries are not known from HeadObject, so the result says ``ABSENT`` and the
reason says why. Same for CRC32C/CRC64NVME, which need awscrt (not in the Lambda runtime).

Reasons never contain object contents: exception messages of the parsers (which can quote bytes or
values) are never copied; only fixed texts, line numbers and field counts are.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import errno
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional, Protocol

# Result values (the same strings as pipeline_common.constants; repeated so this module stays pure).
VALID, CORRUPT, UNCHECKED = "VALID", "CORRUPT", "UNCHECKED"
VERIFIED, ABSENT, MISMATCH = "VERIFIED", "ABSENT", "MISMATCH"

DEFAULT_CHUNK_ROWS = 50_000
DEFAULT_MAX_JSON_DOCUMENT_BYTES = 64 * 1024 * 1024

READ_BUFFER_BYTES = 1024 * 1024  # buffer between the raw stream and the parsers
SPOOL_CHUNK_BYTES = 8 * 1024 * 1024  # Parquet download chunk
TMP_HEADROOM_BYTES = 32 * 1024 * 1024  # free space left untouched in tmp_dir when spooling Parquet

UNKNOWN_FORMAT = "unknown"
GZIP_SUFFIX = "+gzip"


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


# ---------------------------------------------------------------------------------------------- errors
class IntegrityProblem(Exception):
    """A parser's verdict on the object itself (the reason is a fixed text, never object contents)."""

    status = CORRUPT

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CorruptObject(IntegrityProblem):
    """The object is empty or cannot be parsed as its format."""

    status = CORRUPT


class UncheckableObject(IntegrityProblem):
    """The object's format is known but it cannot be checked here (too large, unsupported feature)."""

    status = UNCHECKED


class SourceChecksumError(Exception):
    """Raised by a stream whose own transport checksum validation failed (botocore FlexibleChecksumError).

    :func:`check_object` turns it into a CORRUPT result with checksum MISMATCH.
    """


# ---------------------------------------------------------------------------------------------- formats
@dataclass(frozen=True)
class FormatSpec:
    kind: str  # csv | tsv | json | jsonl | parquet | fixed-width
    gzip: bool = False

    @property
    def label(self) -> str:
        return self.kind + (GZIP_SUFFIX if self.gzip else "")


_EXTENSIONS = {
    "csv": "csv",
    "tsv": "tsv",
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "parquet": "parquet",
    "txt": "fixed-width",
    "dat": "fixed-width",
    "fwf": "fixed-width",
}
_SAFE_EXTENSION = re.compile(r"^[a-z0-9]{1,12}$")


def _extension(key: str) -> tuple[str | None, bool]:
    """(lower-case extension without the dot or None, gzip?) of the key's last path segment."""
    name = key.rsplit("/", 1)[-1].lower()
    compressed = False
    if name.endswith(".gz"):
        compressed, name = True, name[:-3]
    if "." not in name:
        return None, compressed
    return name.rsplit(".", 1)[1], compressed


def detect_format(key: str) -> Optional[FormatSpec]:
    """The format of an object from its key's extension (case-insensitive), or None if unknown."""
    extension, compressed = _extension(key)
    kind = _EXTENSIONS.get(extension or "")
    return FormatSpec(kind, compressed) if kind else None


def _unknown_format_reason(key: str) -> str:
    extension, compressed = _extension(key)
    if extension is None:
        return "no recognised file extension" + (" before .gz" if compressed else "")
    shown = f" .{extension}" if _SAFE_EXTENSION.match(extension) else ""
    return f"unrecognised file extension{shown}" + (" (gzip)" if compressed else "")


# ---------------------------------------------------------------------------------------------- checksums
class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


_HASHES: dict[str, Callable[[], Any]] = {"SHA256": hashlib.sha256, "SHA1": hashlib.sha1, "CRC32": _Crc32}
# HeadObject fields, in the order they are preferred when several are present.
_CHECKSUM_FIELDS = (("ChecksumSHA256", "SHA256"), ("ChecksumSHA1", "SHA1"), ("ChecksumCRC32", "CRC32"))
_UNVERIFIABLE_FIELDS = (("ChecksumCRC64NVME", "CRC64NVME"), ("ChecksumCRC32C", "CRC32C"))
_PART_COUNT_SUFFIX = re.compile(r"-\d+$")


@dataclass(frozen=True)
class ExpectedChecksum:
    """A full-object checksum as S3 stores it: the algorithm and the base64 digest."""

    algorithm: str
    value: str

    def digest(self) -> bytes:
        return base64.b64decode(self.value, validate=True)


def expected_checksum(head: Mapping[str, Any]) -> tuple[Optional[ExpectedChecksum], Optional[str]]:
    """Pick the full-object checksum to verify from a HeadObject(ChecksumMode=ENABLED) response.

    Returns ``(checksum, None)`` when one can be verified, else ``(None, note)`` where ``note`` says why
    not (``None`` when the object simply has no checksum).
    """
    checksum_type = str(head.get("ChecksumType") or "").upper()
    etag = str(head.get("ETag") or "").strip().strip('"')
    multipart_etag = bool(_PART_COUNT_SUFFIX.search(etag))
    for field, algorithm in _CHECKSUM_FIELDS:
        value = head.get(field)
        if not isinstance(value, str) or not value:
            continue
        if (
            checksum_type == "COMPOSITE"
            or _PART_COUNT_SUFFIX.search(value)
            or (multipart_etag and checksum_type != "FULL_OBJECT")
        ):
            return None, f"composite multipart {algorithm} checksum not verified"
        try:
            expected = ExpectedChecksum(algorithm, value)
            expected.digest()
        except (binascii.Error, ValueError):
            return None, f"stored {algorithm} checksum is not valid base64"
        return expected, None
    for field, algorithm in _UNVERIFIABLE_FIELDS:
        if head.get(field):
            return None, f"{algorithm} checksum not verified (no implementation in the runtime)"
    return None, None


class HashingReader(io.RawIOBase):
    """A raw binary stream over ``source.read(n)`` that hashes every byte read and counts them.

    The first exception the source raises is kept in :attr:`source_error` (and re-raised), so a
    network failure or a transport checksum failure is never mistaken for a parse error by code that
    sees it wrapped by a parser.
    """

    def __init__(self, source: Readable, checksum: Optional[ExpectedChecksum] = None):
        super().__init__()
        self._source = source
        self._hash = _HASHES[checksum.algorithm]() if checksum is not None else None
        self.bytes_read = 0
        self.exhausted = False
        self.source_error: Optional[BaseException] = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.exhausted or not len(view):
            return 0
        try:
            data = self._source.read(len(view))
        except Exception as exc:
            if self.source_error is None:
                self.source_error = exc
            raise
        if not data:
            self.exhausted = True
            return 0
        size = len(data)
        if size > len(view):  # a source must not return more than asked for; never lose bytes
            raise OSError("the source stream returned more bytes than requested")
        view[:size] = data
        if self._hash is not None:
            self._hash.update(data)
        self.bytes_read += size
        return size

    def drain(self, chunk_bytes: int = READ_BUFFER_BYTES) -> None:
        """Read (and hash) whatever the parser left unread."""
        buffer = bytearray(chunk_bytes)
        while self.readinto(buffer):
            pass

    def digest(self) -> Optional[bytes]:
        return self._hash.digest() if self._hash is not None else None


# ---------------------------------------------------------------------------------------------- parsers
def _pandas():
    import pandas  # imported lazily: the handler's cold start does not pay for an unknown format

    return pandas


def _rows_in(reader: Any) -> int:
    """Rows of a chunked pandas reader, one chunk in memory at a time."""
    return sum(len(chunk) for chunk in reader)


def count_delimited_rows(binary: Any, *, sep: str, chunk_rows: int = DEFAULT_CHUNK_ROWS, encoding: str = "utf-8") -> int:
    """Data rows of a UTF-8 CSV/TSV with a header, parsed ``chunk_rows`` rows at a time.

    Raises the parser's own exceptions (see :func:`describe_parse_error`).
    """
    pd = _pandas()
    # index_col=False: without it pandas silently takes the first column as the index when the first data
    # row has one field more than the header; with it pandas only warns (and drops the extra field), so
    # that ParserWarning is made an error. Later rows with extra fields fail in the tokenizer.
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        with pd.read_csv(
            binary,
            sep=sep,
            chunksize=chunk_rows,
            index_col=False,
            on_bad_lines="error",
            encoding=encoding,
            encoding_errors="strict",
            dtype=str,
            na_filter=False,
            compression=None,
            engine="c",
            low_memory=True,
        ) as reader:
            return _rows_in(reader)


def count_json_lines_rows(binary: Any, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, encoding: str = "utf-8") -> int:
    """Records of UTF-8 JSON Lines, parsed ``chunk_rows`` lines at a time; no record at all is CORRUPT."""
    pd = _pandas()
    with pd.read_json(
        binary,
        lines=True,
        chunksize=chunk_rows,
        dtype=False,
        encoding=encoding,
        encoding_errors="strict",
        compression=None,
    ) as reader:
        rows = _rows_in(reader)
    if rows == 0:
        raise CorruptObject("no JSON Lines record (blank lines only)")
    return rows


def count_fixed_width_rows(binary: Any, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, encoding: str = "utf-8") -> int:
    """Data rows of UTF-8 fixed-width text with a header (column positions inferred from the first 100 rows)."""
    pd = _pandas()
    with pd.read_fwf(
        binary,
        chunksize=chunk_rows,
        dtype=str,
        na_filter=False,
        encoding=encoding,
        encoding_errors="strict",
        compression=None,
    ) as reader:
        return _rows_in(reader)


def read_bounded(binary: Any, limit: int, chunk_bytes: int = READ_BUFFER_BYTES) -> bytes:
    """All of ``binary`` if it holds at most ``limit`` bytes, else UncheckableObject (reads limit+1 at most)."""
    parts: list[bytes] = []
    total = 0
    while True:
        data = binary.read(min(chunk_bytes, limit + 1 - total))
        if not data:
            return b"".join(parts)
        parts.append(data)
        total += len(data)
        if total > limit:
            raise UncheckableObject(
                f"JSON document larger than {_size_text(limit)} cannot be checked in bounded memory"
            )


def _reject_constant(name: str) -> Any:
    raise ValueError("non-standard JSON constant")


def count_json_document_rows(binary: Any, *, max_bytes: int = DEFAULT_MAX_JSON_DOCUMENT_BYTES, encoding: str = "utf-8") -> int:
    """Parse one whole (strict) JSON document of at most ``max_bytes``; rows = array length or 1."""
    data = read_bounded(binary, max_bytes)
    text = data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    del data
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise UncheckableObject("JSON document nested too deeply to check") from None
    return len(document) if isinstance(document, list) else 1


@contextmanager
def spooled_file(binary: Any, *, tmp_dir: Optional[str] = None, size: Optional[int] = None) -> Iterator[str]:
    """Copy ``binary`` to a temporary file in ``tmp_dir`` chunk by chunk; yield its path, then delete it.

    ``size`` (when known) is checked against the free space first; the copy also stops as soon as it
    would eat into the last ``TMP_HEADROOM_BYTES``. Either way: UncheckableObject.
    """
    directory = tmp_dir or tempfile.gettempdir()
    free = shutil.disk_usage(directory).free
    budget = free - TMP_HEADROOM_BYTES
    too_big = f"object does not fit in the free space of the temporary directory ({_size_text(max(free, 0))} free)"
    if size is not None and size > budget:
        raise UncheckableObject(too_big)
    fd, path = tempfile.mkstemp(prefix="integrity-", suffix=".parquet", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            written = 0
            while True:
                data = binary.read(SPOOL_CHUNK_BYTES)
                if not data:
                    break
                written += len(data)
                if written > budget:
                    raise UncheckableObject(too_big)
                try:
                    out.write(data)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise UncheckableObject(too_big) from None
                    raise
        yield path
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


_UNSUPPORTED_TEXT = re.compile(r"not (yet )?(supported|implemented)|unsupported", re.IGNORECASE)


def count_parquet_rows(path: str) -> int:
    """Rows of a Parquet file, decoding one row group at a time with fastparquet."""
    try:
        from fastparquet import ParquetFile

        parquet = ParquetFile(path)
        rows = 0
        for frame in parquet.iter_row_groups():
            rows += len(frame)
            del frame
        return rows
    except MemoryError:
        raise
    except NotImplementedError:
        raise UncheckableObject("uses a Parquet feature fastparquet cannot read") from None
    except Exception as exc:  # fastparquet raises many types on damaged input (OSError, ValueError, ...)
        if _UNSUPPORTED_TEXT.search(str(exc)):
            raise UncheckableObject("uses a Parquet feature fastparquet cannot read") from None
        raise CorruptObject(f"not a readable Parquet file ({type(exc).__name__})") from None


# ---------------------------------------------------------------------------------------------- errors -> reasons
_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def describe_parse_error(exc: BaseException, spec: FormatSpec) -> Optional[str]:
    """A short reason for a parser exception, or None if it is not a parse error (a bug: let it raise).

    Only fixed texts and numbers are used: parser messages can quote the object's bytes. The order of
    the checks matters: UnicodeError and pandas' errors are ValueErrors too.
    """
    for describe in (_describe_gzip_error, _describe_pandas_error, _describe_other_error):
        reason = describe(exc, spec)
        if reason is not None:
            return reason
    return None


def _describe_gzip_error(exc: BaseException, spec: FormatSpec) -> Optional[str]:
    """Truncated or damaged (gzip) streams."""
    if isinstance(exc, EOFError):
        return "truncated gzip stream" if spec.gzip else "unexpected end of data"
    if isinstance(exc, zlib.error):
        return "corrupt gzip data"
    if isinstance(exc, gzip.BadGzipFile):
        text = str(exc)
        if text.startswith("CRC check failed") or text.startswith("Incorrect length"):
            return "gzip CRC or length check failed"
        return "not a valid gzip stream"
    return None


def _describe_pandas_error(exc: BaseException, spec: FormatSpec) -> Optional[str]:
    """Bad text and pandas' own parser errors."""
    if isinstance(exc, UnicodeError):  # text readers name the encoding (_count_rows); this is a fallback
        return "not valid text in its encoding"
    pd = _pandas()
    if isinstance(exc, pd.errors.EmptyDataError):
        return "no columns to parse (blank text)"
    if isinstance(exc, pd.errors.ParserWarning):  # made an error by count_delimited_rows
        return "the first data row has more fields than the header"
    if isinstance(exc, pd.errors.ParserError):
        return _describe_tokenizer_error(str(exc), spec)
    return None


def _describe_tokenizer_error(message: str, spec: FormatSpec) -> str:
    """pandas' tokenizer message reduced to its numbers (the message itself may quote the data)."""
    match = _FIELDS_ERROR.search(message)
    if match:
        expected, line, seen = match.groups()
        return f"line {line} has {seen} fields, the header has {expected}"
    if "EOF inside string" in message:
        return "unterminated quoted field"
    return f"malformed {spec.kind.upper()} text"


def _describe_other_error(exc: BaseException, spec: FormatSpec) -> Optional[str]:
    """The csv module's errors and the ValueErrors of the JSON readers (json, ujson, pandas)."""
    if isinstance(exc, csv.Error):
        return f"malformed {spec.kind} text"
    if isinstance(exc, ValueError):
        if spec.kind == "jsonl":
            return "invalid JSON Lines record"
        if spec.kind == "json":
            return "invalid JSON document"
        return f"malformed {spec.kind} data"
    return None


# ---------------------------------------------------------------------------------------------- check
def result(status: str, fmt: str, reason: str, rows: Optional[int], checksum: str) -> dict:
    return {"status": status, "format": fmt, "reason": reason, "rows": rows, "checksum": checksum}


def _size_text(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    return f"{size} bytes"


_NO_ROWS_REASON = {
    "csv": "header only, no data rows",
    "tsv": "header only, no data rows",
    "fixed-width": "header only, no data rows",
    "json": "empty JSON array",
    "parquet": "schema only, no rows",
}


def _inspect(
    spec: Optional[FormatSpec],
    buffered: io.BufferedReader,
    *,
    size: Optional[int],
    chunk_rows: int,
    max_json_bytes: int,
    tmp_dir: Optional[str],
) -> tuple[str, str, Optional[int]]:
    """Parse the stream as ``spec``; returns (status, reason, rows). Raises parser exceptions."""
    if not buffered.peek(1):
        raise CorruptObject("empty object")
    if spec is None:
        return UNCHECKED, "", None  # reason filled in by the caller
    binary: Any = buffered
    if spec.gzip:
        binary = gzip.GzipFile(fileobj=buffered, mode="rb")
        if not binary.peek(1):
            raise CorruptObject("empty object (after gzip decompression)")
    rows = _count_rows(spec, binary, size=size, chunk_rows=chunk_rows, max_json_bytes=max_json_bytes, tmp_dir=tmp_dir)
    if rows == 0:
        return VALID, _NO_ROWS_REASON[spec.kind], 0
    return VALID, f"parsed {rows} rows", rows


# Byte order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-16": "UTF-16", "utf-32": "UTF-32"}


def text_encoding(binary: Any) -> str:
    """The encoding a byte order mark at the start of ``binary`` names (without consuming it), else UTF-8.
    (``utf-16``/``utf-32`` read the mark and then the order it says; pandas skips a UTF-8 mark itself.)"""
    start = binary.peek(4)[:4]
    return next((encoding for mark, encoding in _BYTE_ORDER_MARKS if start.startswith(mark)), "utf-8")


def _encoding_reason(encoding: str) -> str:
    if encoding == "utf-8":
        return ("not valid UTF-8 text, and no byte order mark names another encoding: export it as UTF-8, "
                "or as UTF-16 with a byte order mark")
    return f"not valid {_ENCODING_NAMES[encoding]} text (its byte order mark says {_ENCODING_NAMES[encoding]})"


def _count_rows(
    spec: FormatSpec,
    binary: Any,
    *,
    size: Optional[int],
    chunk_rows: int,
    max_json_bytes: int,
    tmp_dir: Optional[str],
) -> int:
    """The rows of the (decompressed) stream, counted by the parser of ``spec.kind``."""
    if spec.kind == "parquet":
        with spooled_file(binary, tmp_dir=tmp_dir, size=None if spec.gzip else size) as path:
            return count_parquet_rows(path)
    encoding = text_encoding(binary)
    try:
        return _count_text_rows(spec, binary, encoding, size=size, chunk_rows=chunk_rows, max_json_bytes=max_json_bytes)
    except UnicodeError:
        raise CorruptObject(_encoding_reason(encoding)) from None


def _count_text_rows(
    spec: FormatSpec, binary: Any, encoding: str, *, size: Optional[int], chunk_rows: int, max_json_bytes: int,
) -> int:
    if spec.kind in ("csv", "tsv"):
        return count_delimited_rows(binary, sep="," if spec.kind == "csv" else "\t", chunk_rows=chunk_rows, encoding=encoding)
    if spec.kind == "jsonl":
        return count_json_lines_rows(binary, chunk_rows=chunk_rows, encoding=encoding)
    if spec.kind == "fixed-width":
        return count_fixed_width_rows(binary, chunk_rows=chunk_rows, encoding=encoding)
    if spec.kind == "json":
        if not spec.gzip and size is not None and size > max_json_bytes:
            raise UncheckableObject(
                f"JSON document larger than {_size_text(max_json_bytes)} cannot be checked in bounded memory"
            )
        return count_json_document_rows(binary, max_bytes=max_json_bytes, encoding=encoding)
    raise AssertionError(spec.kind)  # pragma: no cover - _EXTENSIONS and this switch are kept in step


def check_object(
    stream: Readable,
    key: str,
    *,
    size: Optional[int] = None,
    checksum: Optional[ExpectedChecksum] = None,
    checksum_note: Optional[str] = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_json_bytes: int = DEFAULT_MAX_JSON_DOCUMENT_BYTES,
    tmp_dir: Optional[str] = None,
) -> dict:
    """Check the object read from ``stream`` (never read whole) whose format is told by ``key``.

    ``size`` is the object's length if known (used to refuse big JSON documents and Parquet files that
    do not fit in ``tmp_dir`` before reading them). ``checksum`` is the stored full-object checksum to
    verify, ``checksum_note`` why there is none to verify (see :func:`expected_checksum`).

    Exceptions raised by ``stream`` itself propagate unchanged (the handler turns them into
    TransientError), except :class:`SourceChecksumError`, which yields CORRUPT / MISMATCH.
    """
    if chunk_rows < 1 or max_json_bytes < 0:
        raise ValueError("chunk_rows must be >= 1 and max_json_bytes >= 0")
    spec = detect_format(key)
    fmt = spec.label if spec else UNKNOWN_FORMAT
    reader = HashingReader(stream, checksum)
    buffered = io.BufferedReader(reader, buffer_size=READ_BUFFER_BYTES)
    try:
        status, reason, rows = _parse(
            spec, key, buffered, reader, size=size, chunk_rows=chunk_rows, max_json_bytes=max_json_bytes, tmp_dir=tmp_dir
        )
        checksum_state = _verify_checksum(reader, checksum)
    except SourceChecksumError:
        return result(CORRUPT, fmt, "checksum mismatch (reported by the transport)", None, MISMATCH)
    if checksum_state == MISMATCH:
        return result(CORRUPT, fmt, f"checksum mismatch ({checksum.algorithm})", None, MISMATCH)  # type: ignore[union-attr]
    if checksum_state == ABSENT and checksum_note:
        reason = f"{reason}; {checksum_note}" if reason else checksum_note
    return result(status, fmt, reason, rows, checksum_state)


def _parse(
    spec: Optional[FormatSpec],
    key: str,
    buffered: io.BufferedReader,
    reader: HashingReader,
    **limits: Any,
) -> tuple[str, str, Optional[int]]:
    """(status, reason, rows): what :func:`_inspect` found, or the problem it raised turned into a
    result. A failure of the stream itself (``reader.source_error``) is re-raised instead, whatever the
    parser made of it. ``limits`` are :func:`_inspect`'s keyword arguments."""
    try:
        status, reason, rows = _inspect(spec, buffered, **limits)
    except IntegrityProblem as problem:
        if reader.source_error is not None:
            raise reader.source_error from None
        return problem.status, problem.reason, None
    except Exception as exc:
        if reader.source_error is not None:
            raise reader.source_error from None
        described = describe_parse_error(exc, spec) if spec else None
        if described is None:
            raise
        return CORRUPT, described, None
    if spec is None and status == UNCHECKED:
        reason = _unknown_format_reason(key)
    return status, reason, rows


def _verify_checksum(reader: HashingReader, checksum: Optional[ExpectedChecksum]) -> str:
    """VERIFIED or MISMATCH once what the parser left unread is hashed too; ABSENT without a checksum."""
    if checksum is None:
        return ABSENT
    reader.drain()
    return VERIFIED if reader.digest() == checksum.digest() else MISMATCH
