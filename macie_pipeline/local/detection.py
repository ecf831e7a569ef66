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
  JSON Lines and Parquet.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import functools
import gzip
import io
import json
import re
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
@dataclass(frozen=True)
class Field:
    """One value of structured data: its text, the names a keyword may also be in (the column name,
    or the names along a JSON path), and its location as Macie reports it (``cells`` or ``records``)."""

    text: str
    names: str
    kind: str
    location: dict


@dataclass(frozen=True)
class Extraction:
    """What can be analysed in an object: ``content`` is the text of unstructured data or the
    fields of structured data; ``status``/``reason`` say whether all of it could be read."""

    status: str
    reason: str | None
    mime_type: str | None
    content: str | tuple[Field, ...]


_MIME = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "json": "application/json",
    "jsonl": "application/json",
    "ndjson": "application/json",
    "parquet": "application/parquet",
}
_CONTENT_TYPES = {"text/csv": "csv", "text/tab-separated-values": "tsv", "application/json": "json", "application/x-ndjson": "jsonl"}


def extension_of(key: str) -> str:
    """The file name extension of a key ("" when there is none), as Macie reports ``s3Object.extension``."""
    name = key.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[1] if "." in name.strip(".") else ""


def extract_text(data: bytes, key: str, content_type: str | None = None) -> Extraction:
    """Read an object's bytes as Macie would: gunzip, then Parquet, CSV/TSV, JSON, JSON Lines or text.

    The type comes from the content first (gzip and Parquet magic bytes), then the key's extension,
    then ``content_type``. Bytes that cannot be read give SKIPPED (or PARTIAL when only some JSON
    Lines could be parsed) with Macie's reason code.
    """
    if data[:2] == b"\x1f\x8b":
        return _gunzipped(data, key)
    kind = extension_of(key).lower()
    if kind not in _MIME:
        kind = _CONTENT_TYPES.get((content_type or "").split(";")[0].strip().lower(), kind)
    if kind == "parquet" or data[:4] == b"PAR1":
        return _parquet(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Extraction(SKIPPED, UNSUPPORTED_FILE_TYPE, "application/octet-stream", "")
    if "\x00" in text:
        return Extraction(SKIPPED, UNSUPPORTED_FILE_TYPE, "application/octet-stream", "")
    return _text_of_kind(text, kind, _MIME.get(kind, "text/plain"))


def _gunzipped(data: bytes, key: str) -> Extraction:
    """A gzip object: what its content gives, under the key without ``.gz``, reported as gzip."""
    try:
        inner = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return Extraction(SKIPPED, MALFORMED_FILE, "application/gzip", "")
    stem = key[: -len(extension_of(key)) - 1] if extension_of(key) in ("gz", "gzip") else key
    found = extract_text(inner, stem, None)
    return Extraction(found.status, found.reason, "application/gzip", found.content)


def _text_of_kind(text: str, kind: str, mime: str) -> Extraction:
    """Decoded text, read as the ``kind`` (extension) says."""
    if kind in ("csv", "tsv"):
        return _delimited(text, "," if kind == "csv" else "\t", mime)
    if kind == "json":
        try:
            value = json.loads(text) if text.strip() else None
        except ValueError:
            return Extraction(SKIPPED, UNABLE_TO_PARSE_FILE, mime, ())
        return Extraction(COMPLETE, None, mime, tuple(_json_fields(value, 0)))
    if kind in ("jsonl", "ndjson"):
        return _json_lines(text, mime)
    return Extraction(COMPLETE, None, mime, text)


def _delimited(text: str, delimiter: str, mime: str) -> Extraction:
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        return Extraction(SKIPPED, UNABLE_TO_PARSE_FILE, mime, ())
    header = rows[0] if rows else []
    fields = []
    for row_number, row in enumerate(rows[1:], start=2):
        for column, cell in enumerate(row, start=1):
            name = header[column - 1] if column <= len(header) else ""
            location: dict[str, Any] = {"row": row_number, "column": column}
            if name:
                location["columnName"] = name
            fields.append(Field(cell, name, "cells", location))
    return Extraction(COMPLETE, None, mime, tuple(fields))


def _json_lines(text: str, mime: str) -> Extraction:
    fields: list[Field] = []
    bad = good = 0
    for index, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            bad += 1
            continue
        good += 1
        fields.extend(_json_fields(value, index))
    if bad and not good:
        return Extraction(SKIPPED, UNABLE_TO_PARSE_FILE, mime, ())
    if bad:
        return Extraction(PARTIAL, UNABLE_TO_PARSE_FILE, mime, tuple(fields))
    return Extraction(COMPLETE, None, mime, tuple(fields))


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


def _parquet(data: bytes) -> Extraction:
    import pandas

    # A Parquet file starts and ends with PAR1, the footer length just before the final magic.
    footer = int.from_bytes(data[-8:-4], "little") if len(data) >= 12 else -1
    if data[:4] != b"PAR1" or data[-4:] != b"PAR1" or not 0 < footer <= len(data) - 12:
        return Extraction(SKIPPED, UNABLE_TO_PARSE_FILE, "application/parquet", ())
    try:
        # fastparquet prints what it thinks of corrupt metadata; pandas warns that the engine is deprecated.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pandas.read_parquet(io.BytesIO(data), engine="fastparquet")
    except Exception:  # noqa: BLE001 - fastparquet raises many kinds of errors for bad bytes
        return Extraction(SKIPPED, UNABLE_TO_PARSE_FILE, "application/parquet", ())
    fields = []
    for index, row in enumerate(frame.itertuples(index=False, name=None)):
        for column, value in zip(frame.columns, row, strict=True):
            if value is None or value is pandas.NA or value is pandas.NaT or (isinstance(value, float) and value != value):
                continue
            name = str(column)
            text = value if isinstance(value, str) else str(value)
            fields.append(Field(text, name, "records", {"recordIndex": index, "jsonPath": _json_path((name,))}))
    return Extraction(COMPLETE, None, "application/parquet", tuple(fields))


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


@functools.lru_cache(maxsize=256)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True)), re.IGNORECASE)


def _keyword_spans(text: str, keywords: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of every keyword occurrence; keywords that overlap (``credit``, ``credit card``) all count."""
    return [(m.start(), m.end()) for keyword in keywords for m in _keyword_pattern((keyword,)).finditer(text)]


def _names_have_keyword(names: str, keywords: tuple[str, ...]) -> bool:
    return bool(keywords) and bool(names) and _keyword_pattern(keywords).search(names) is not None


def _managed_keyword_near(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(
        (k_end <= start and start - k_end <= MANAGED_KEYWORD_DISTANCE) or (k_start >= end and k_start - end <= MANAGED_KEYWORD_DISTANCE)
        for k_start, k_end in spans
    )


def _custom_keyword_before(spans: list[tuple[int, int]], start: int, end: int, distance: int) -> bool:
    return any(k_end <= start and end - k_end <= distance for _k_start, k_end in spans)


class _Lines:
    """Offsets to (line, column), both from 1, for ``lineRanges``."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]

    def range(self, start: int, end: int) -> dict:
        first = bisect.bisect_right(self.starts, start) - 1
        last = bisect.bisect_right(self.starts, max(start, end - 1)) - 1
        return {"start": first + 1, "end": last + 1, "startColumn": start - self.starts[first] + 1}


def _allowed(text: str, allow_lists: Sequence[AllowListSpec]) -> bool:
    return any(allow.allows(text) for allow in allow_lists)


def _segments(content: str | tuple[Field, ...]) -> Iterator[tuple[str, str, Callable[[int, int], tuple[str, dict]]]]:
    """(text, names, locate) for each piece of content that is searched on its own."""
    if isinstance(content, str):
        lines = _Lines(content)
        yield content, "", lambda start, end: ("lineRanges", lines.range(start, end))
    else:
        for item in content:
            yield item.text, item.names, (lambda _s, _e, item=item: (item.kind, dict(item.location)))


def detect(
    content: str | tuple[Field, ...],
    *,
    managed: Iterable[ManagedIdentifier] = (),
    custom: Iterable[CustomIdentifierSpec] = (),
    allow_lists: Sequence[AllowListSpec] = (),
) -> list[Detection]:
    """Every managed type and custom identifier that matched, in the order given, with counts and locations."""
    managed, custom = list(managed), list(custom)
    found: dict[str, Detection] = {}
    for text, names, locate in _segments(content):
        for identifier in managed:
            spans = _keyword_spans(text, identifier.keywords) if identifier.keywords else []
            named = _names_have_keyword(names, identifier.keywords)
            for match in identifier.pattern.finditer(text):
                value = match.group(0)
                if not identifier.check(value) or _allowed(value, allow_lists):
                    continue
                near = named or _managed_keyword_near(spans, match.start(), match.end())
                if (identifier.keyword_rule == REQUIRED and not near) or (identifier.keyword_rule == ABSENT and near):
                    continue
                detection = found.setdefault(identifier.id, Detection(identifier.id, identifier.category))
                detection.add(*locate(match.start(), match.end()))
        for spec in custom:
            spans = _keyword_spans(text, spec.keywords) if spec.keywords else []
            named = _names_have_keyword(names, spec.keywords)
            for match in spec.pattern.finditer(text):
                value = match.group(0)
                if not value or any(word in value for word in spec.ignore_words) or _allowed(value, allow_lists):
                    continue
                if spec.keywords and not (named or _custom_keyword_before(spans, match.start(), match.end(), spec.maximum_match_distance)):
                    continue
                detection = found.setdefault(spec.id, Detection(spec.name, CUSTOM, custom=spec))
                detection.add(*locate(match.start(), match.end()))
    order = [m.id for m in managed] + [c.id for c in custom]
    return [found[key] for key in order if key in found]


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
