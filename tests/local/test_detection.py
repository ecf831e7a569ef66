"""The local Macie's reading of objects (issue 13): streamed in bounded memory, text in the encoding its
byte order mark names, Excel workbooks and PDFs located as Macie reports them, and what cannot be read
reported as not analysed."""

from __future__ import annotations

import codecs
import io
import random
import tracemalloc

import openpyxl
import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
from test_local_macie import (
    EMPLOYEE,
    MANAGED,
    env,  # noqa: F401 - the fixture
    finish,
    job_request,
    make_macie,
    put,
    result_records,
)

from macie_pipeline.local import detection
from macie_pipeline.local.detection import analyse_object, detect


def run_job(s3, key_arn, objects: dict[str, bytes]) -> tuple[dict, dict]:
    """Classify ``objects`` with the local Macie: (findings by key, discovery result by key)."""
    macie = make_macie(s3, key_arn)
    for key, body in objects.items():
        put(s3, key, body)
    finish(macie, macie.call("CreateClassificationJob", job_request())["jobId"])
    findings = {f["resourcesAffected"]["s3Object"]["key"]: f for f in macie.findings.values()}
    results = {r["resourcesAffected"]["s3Object"]["key"]: r["classificationDetails"]["result"] for r in result_records(s3)}
    return findings, results


def detections_of(finding: dict) -> dict[str, tuple[int, dict]]:
    return {d["type"]: (d["count"], d["occurrences"]) for item in finding["classificationDetails"]["result"]["sensitiveData"]
            for d in item["detections"]}


# ------------------------------------------------------------------------------------------ encodings
ROSTER = "name,city,card\nÅsa,Malmö,4539 1488 0343 6467\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_text_is_read_in_the_encoding_its_byte_order_mark_names(env, encoding):  # noqa: F811
    """Fails on the old code: only UTF-8 was read, a UTF-16 CSV was SKIPPED as not text."""
    s3, key_arn = env
    body = ROSTER.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # these codecs write no mark: add the one the data needs
        body = (codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE) + body
    findings, results = run_job(s3, key_arn, {"roster.csv": body})
    assert results["roster.csv"]["status"] == {"code": "COMPLETE"}
    assert detections_of(findings["roster.csv"]) == {
        "CREDIT_CARD_NUMBER": (1, {"cells": [{"row": 2, "column": 3, "columnName": "card"}]}),
    }


# ------------------------------------------------------------------------------------ workbooks, PDFs
def workbook() -> bytes:
    book = openpyxl.Workbook()
    staff = book.active
    staff.title = "Staff"
    staff.append(["name", "ssn"])
    staff.append(["Alex Doe", "123-45-6789"])
    notes = book.create_sheet("Q3 notes")
    notes["B4"] = "employee EMP-482913 moved"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def pdf(pages: list[str], password: str | None = None) -> bytes:
    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    }))
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(content)
    if password:
        writer.encrypt(password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_excel_workbooks_and_pdfs_are_analysed_and_located_as_macie_reports_them(env):  # noqa: F811
    """Fails on the old code: a workbook or a PDF was SKIPPED (binary), its sensitive data unreported."""
    s3, key_arn = env
    findings, results = run_job(s3, key_arn, {
        "staff.xlsx": workbook(),
        "letter.pdf": pdf(["Dear Alex,", "Your SSN 123-45-6789 is on file."]),
    })
    assert {key: (r["status"], r["mimeType"]) for key, r in results.items()} == {
        "staff.xlsx": ({"code": "COMPLETE"}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        "letter.pdf": ({"code": "COMPLETE"}, "application/pdf"),
    }
    # Every sheet; the column name (the first row) is a keyword for the column's values.
    assert detections_of(findings["staff.xlsx"])["USA_SOCIAL_SECURITY_NUMBER"] == (
        1, {"cells": [{"cellReference": "Staff!B2", "row": 2, "column": 2, "columnName": "ssn"}]})
    custom = findings["staff.xlsx"]["classificationDetails"]["result"]["customDataIdentifiers"]["detections"]
    assert [(d["name"], d["occurrences"]) for d in custom] == [
        ("EmployeeId", {"cells": [{"cellReference": "'Q3 notes'!B4", "row": 4, "column": 2}]})]
    assert detections_of(findings["letter.pdf"]) == {"USA_SOCIAL_SECURITY_NUMBER": (1, {"pages": [{"pageNumber": 2}]})}


def test_what_the_local_macie_cannot_read_is_reported_as_not_analysed(env):  # noqa: F811
    """Fails on the old code: a damaged PDF made of text was analysed as plain text and reported
    COMPLETE with nothing found; the others were "unsupported" rather than malformed."""
    s3, key_arn = env
    good, rng = workbook(), random.Random(1)
    objects = {
        "damaged.pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\nSSN 123-45-6789 trailer <<",
        "locked.pdf": pdf(["SSN 123-45-6789"], password="secret"),
        "damaged.xlsx": good[: len(good) // 2],
        "junk.csv": bytes(rng.randrange(256) for _ in range(4096)),
    }
    findings, results = run_job(s3, key_arn, objects)
    assert findings == {}
    assert {key: (r["status"], r["sizeClassified"]) for key, r in results.items()} == {
        "damaged.pdf": ({"code": "SKIPPED", "reason": "MALFORMED_FILE"}, 0),
        "locked.pdf": ({"code": "SKIPPED", "reason": "MALFORMED_FILE"}, 0),
        "damaged.xlsx": ({"code": "SKIPPED", "reason": "MALFORMED_OR_FILE_SIZE_EXCEEDS_LIMIT"}, 0),
        "junk.csv": ({"code": "SKIPPED", "reason": "UNSUPPORTED_FILE_TYPE_EXCEPTION"}, 0),
    }


# ------------------------------------------------------------------------------------------ streaming
class GeneratedCsv(io.RawIOBase):
    """A CSV of ``size`` bytes made on the fly (never whole in memory), a card number every 100 rows."""

    def __init__(self, size: int) -> None:
        self.size, self.pos, self.rows = size, 0, 0
        self.pending = b"id,name,amount,card_number,comment\n"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self.pending) < len(buffer) and self.pos + len(self.pending) < self.size:
            card = "4539 1488 0343 6467" if self.rows % 100 == 0 else ""
            self.pending += f"{self.rows},name-{self.rows % 977},{self.rows * 3.25:.2f},{card},free text {self.rows}\n".encode()
            self.rows += 1
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        self.pos += count
        return count


def test_a_large_object_is_analysed_in_bounded_memory():
    """Fails on the old code, which read, decoded and split the whole object (several times its size)."""
    size = 12_000_000
    tracemalloc.start()
    try:
        analysis = analyse_object(GeneratedCsv(size), "big.csv", managed=MANAGED, custom=[EMPLOYEE])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [cards] = analysis.detections
    assert (analysis.status, cards.type, len(cards.occurrences)) == ("COMPLETE", "CREDIT_CARD_NUMBER", 1000)
    assert cards.count > 1000 and cards.occurrences[1] == ("cells", {"row": 102, "column": 4, "columnName": "card_number"})
    assert peak < 0.25 * size, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB object"


def mixed_text(lines: int = 6000) -> str:
    """Text with keywords and matches on either side of line breaks and at every distance."""
    rng = random.Random(7)
    pieces = ["visa", "4539 1488 0343 6467", "SSN", "123-45-6789", "a@example.com", "employee", "EMP-482913",
              "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secret key", "0.4539148803436467", "EMP-000000"]
    out = []
    for _ in range(lines):
        words = [rng.choice(pieces) if rng.random() < 0.3 else "x" * rng.randrange(1, 12) for _ in range(rng.randrange(1, 8))]
        out.append(" ".join(words))
    return "\n".join(out)


def summary(detections) -> list:
    return [(d.type, d.count, d.occurrences) for d in detections]


def test_results_do_not_depend_on_where_the_stream_is_cut(monkeypatch):
    """Keywords before or after a match across chunk (or batch) boundaries count as in the whole text."""
    text = mixed_text()
    whole = summary(detect(text, managed=MANAGED, custom=[EMPLOYEE]))
    assert {t for t, _, _ in whole} >= {"CREDIT_CARD_NUMBER", "USA_SOCIAL_SECURITY_NUMBER", "EmployeeId", "AWS_CREDENTIALS"}
    for chunk in (97, 1000, 20_011):
        monkeypatch.setattr(detection, "CHUNK_CHARS", chunk)
        monkeypatch.setattr(detection._TextScanner, "GUARD", 64)
        assert summary(detect(text, managed=MANAGED, custom=[EMPLOYEE])) == whole, chunk
        streamed = analyse_object(io.BytesIO(text.encode()), "notes.txt", managed=MANAGED, custom=[EMPLOYEE])
        assert summary(streamed.detections) == whole, chunk

    rows = "id,ssn,comment\n" + "".join(f"{i},{'123-45-6789' if i % 7 else '-'},{line}\n" for i, line in enumerate(text.split("\n")))
    monkeypatch.setattr(detection, "BATCH_CHARS", 1 << 30)
    single = summary(analyse_object(io.BytesIO(rows.encode()), "t.csv", managed=MANAGED, custom=[EMPLOYEE]).detections)
    monkeypatch.setattr(detection, "BATCH_CHARS", 500)
    assert summary(analyse_object(io.BytesIO(rows.encode()), "t.csv", managed=MANAGED, custom=[EMPLOYEE]).detections) == single


# ------------------------------------------------------------------------------- occurrences (issue 12)
def luhn_card(n: int) -> str:
    """A 16-digit number starting 4539 with a valid check digit."""
    body = f"4539{n:011d}"
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(body)):
        doubled = digit * 2 if position % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return body + str((10 - total % 10) % 10)


def test_findings_locate_occurrences_as_macie_does_cells_records_and_lines_at_most_15(env):  # noqa: F811
    """Issue 12: the local Macie's findings say where each occurrence is (CSV: cells with the column
    name; JSON: record index and path; text: line ranges), at most 15 per detection type, as Amazon
    Macie's findings do (the discovery result keeps up to 1,000)."""
    s3, key_arn = env
    cards = [luhn_card(n) for n in range(20)]
    csv = "id,card_number\n" + "".join(f"{n},{card}\n" for n, card in enumerate(cards))
    doc = '{"customers": [{"name": "a", "card": "%s"}, {"card": "%s"}]}' % (cards[0], cards[1])
    notes = f"minutes\n\nthe visa card {cards[2]} was charged\n"
    findings, results = run_job(s3, key_arn, {"people.csv": csv.encode(), "people.json": doc.encode(),
                                              "notes.txt": notes.encode()})
    count, where = detections_of(findings["people.csv"])["CREDIT_CARD_NUMBER"]
    assert count == 20 and list(where) == ["cells"]
    assert where["cells"] == [{"row": r, "column": 2, "columnName": "card_number"} for r in range(2, 17)]  # 15
    assert detections_of(findings["people.json"])["CREDIT_CARD_NUMBER"] == (2, {"records": [
        {"recordIndex": 0, "jsonPath": "$.customers[0].card"}, {"recordIndex": 0, "jsonPath": "$.customers[1].card"}]})
    assert detections_of(findings["notes.txt"])["CREDIT_CARD_NUMBER"] == (
        1, {"lineRanges": [{"start": 3, "end": 3, "startColumn": 15}]})
    result_cells = results["people.csv"]["sensitiveData"][0]["detections"][0]["occurrences"]["cells"]
    assert len(result_cells) == 20  # the discovery result is not cut to 15
    for finding in findings.values():  # never a matched value in a finding
        assert not any(card in repr(finding) for card in cards)
