"""integrity_core on in-memory bytes: formats, corruption, empty and header-only objects, checksums, memory."""

from __future__ import annotations

import base64
import codecs
import gzip
import hashlib
import io
import json
import tracemalloc
import warnings
import zlib

import pandas as pd
import pytest

import integrity_core as core
from integrity_core import (
    ABSENT,
    CORRUPT,
    MISMATCH,
    UNCHECKED,
    VALID,
    VERIFIED,
    ExpectedChecksum,
    check_object,
    detect_format,
    expected_checksum,
)

SECRET = "SECRET-4242-VALUE"  # planted in corrupt objects: must never appear in a reason


# ---------------------------------------------------------------------------------------------- helpers
def run(key: str, data: bytes, **kwargs) -> dict:
    kwargs.setdefault("size", len(data))
    result = check_object(io.BytesIO(data), key, **kwargs)
    assert set(result) == {"status", "format", "reason", "rows", "checksum"}
    assert SECRET not in result["reason"]
    return result


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def sha256_of(data: bytes) -> ExpectedChecksum:
    return ExpectedChecksum("SHA256", b64(hashlib.sha256(data).digest()))


def parquet_bytes(frame: pd.DataFrame, **kwargs) -> bytes:
    import fastparquet

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fastparquet.write(buffer, frame, open_with=lambda path, mode: _NoClose(buffer), **kwargs)
    return buffer.getvalue()


class _NoClose(io.BytesIO):
    """fastparquet closes the file it writes: keep the shared buffer open."""

    def __init__(self, target: io.BytesIO):
        super().__init__()
        self._target = target

    def write(self, data) -> int:
        return self._target.write(data)

    def tell(self) -> int:
        return self._target.tell()

    def seek(self, *args) -> int:
        return self._target.seek(*args)

    def close(self) -> None:
        pass


FRAME = pd.DataFrame({"id": range(25), "name": [f"n{i}" for i in range(25)], "amount": [i * 1.5 for i in range(25)]})
PARQUET = parquet_bytes(FRAME, row_group_offsets=[0, 10, 20])  # 3 row groups

CSV = b"id,name,amount\n1,alice,3.5\n2,bob,4\n3,\"c, quoted\",5\n"
TSV = b"id\tname\tamount\n1\talice\t3.5\n2\tbob\t4\n"
FWF = b"id  name     amount\n1   alice    3.5\n2   bob      4.0\n3   carol    5.0\n4   dave     6.0\n"
JSONL = b'{"id": 1, "name": "alice"}\n{"id": 2, "name": "bob"}\n\n{"id": 3, "name": "carol"}\n'
JSON_ARRAY = json.dumps([{"id": i} for i in range(7)]).encode()


# ---------------------------------------------------------------------------------------------- formats
@pytest.mark.parametrize(
    "key, label",
    [
        ("a.csv", "csv"),
        ("dir/sub/A.CSV", "csv"),
        ("a.tsv", "tsv"),
        ("a.json", "json"),
        ("a.jsonl", "jsonl"),
        ("a.NDJSON", "jsonl"),
        ("a.parquet", "parquet"),
        ("a.txt", "fixed-width"),
        ("a.dat", "fixed-width"),
        ("a.fwf", "fixed-width"),
        ("a.csv.gz", "csv+gzip"),
        ("x/y.Parquet.GZ", "parquet+gzip"),
        ("report.2024.jsonl.gz", "jsonl+gzip"),
    ],
)
def test_detect_format(key, label):
    assert detect_format(key).label == label


@pytest.mark.parametrize("key", ["a.xlsx", "a", "a.gz", "dir.csv/file", "a.csv.zip", "a.csv.gz.bak", "a.tar.gz"])
def test_unknown_formats(key):
    assert detect_format(key) is None
    result = run(key, b"some bytes")
    assert result == {**result, "status": UNCHECKED, "format": "unknown", "rows": None, "checksum": ABSENT}
    assert "extension" in result["reason"]


def test_unknown_extension_reason_never_echoes_odd_text():
    odd = "a." + SECRET.lower() + "-with-odd-chars!"
    result = run(odd, b"x")
    assert result["status"] == UNCHECKED
    assert SECRET.lower() not in result["reason"]
    assert run("a.xlsx", b"x")["reason"] == "unrecognised file extension .xlsx"


# ---------------------------------------------------------------------------------------------- valid objects
VALID_CASES = [
    ("data.csv", CSV, 3),
    ("data.tsv", TSV, 2),
    ("data.txt", FWF, 4),
    ("data.dat", FWF, 4),
    ("data.fwf", FWF, 4),
    ("data.jsonl", JSONL, 3),
    ("data.ndjson", JSONL, 3),
    ("data.json", JSON_ARRAY, 7),
    ("data.json", b'{"a": {"b": [1, 2]}}', 1),
    ("data.parquet", PARQUET, 25),
    ("bom.csv", b"\xef\xbb\xbfid,name\n1,x\n", 1),
    ("short-row.csv", b"a,b,c\n1,2\n", 1),  # fewer fields than the header: padded by pandas
    ("crlf.csv", b"a,b\r\n1,2\r\n3,4\r\n", 2),
]


@pytest.mark.parametrize("key, data, rows", VALID_CASES, ids=[c[0] for c in VALID_CASES])
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_valid_objects(key, data, rows, compressed):
    if compressed:
        key, data = key + ".gz", gzip.compress(data, mtime=0)
    result = run(key, data, chunk_rows=2)  # several chunks even for small files
    assert result["status"] == VALID, result
    assert result["rows"] == rows
    assert result["checksum"] == ABSENT
    assert result["format"] == detect_format(key).label
    assert result["reason"] == f"parsed {rows} rows"


def test_parquet_is_read_one_row_group_at_a_time(tmp_path, monkeypatch):
    import fastparquet

    seen = []
    original = fastparquet.ParquetFile.iter_row_groups

    def spy(self, *args, **kwargs):
        for frame in original(self, *args, **kwargs):
            seen.append(len(frame))
            yield frame

    monkeypatch.setattr(fastparquet.ParquetFile, "iter_row_groups", spy)
    assert run("a.parquet", PARQUET, tmp_dir=str(tmp_path))["rows"] == 25
    assert seen == [10, 10, 5]
    assert list(tmp_path.iterdir()) == []  # the spooled copy is removed


# ---------------------------------------------------------------------------------------------- empty and header-only
@pytest.mark.parametrize("key", ["a.csv", "a.tsv", "a.json", "a.jsonl", "a.parquet", "a.txt", "a.csv.gz", "a.bin"])
def test_zero_byte_object_is_corrupt(key):
    result = run(key, b"")
    assert result["status"] == CORRUPT
    assert result["reason"] == "empty object"
    assert result["rows"] is None


@pytest.mark.parametrize("key", ["a.csv.gz", "a.json.gz", "a.parquet.gz", "a.txt.gz"])
def test_gzip_of_nothing_is_corrupt(key):
    result = run(key, gzip.compress(b"", mtime=0))
    assert (result["status"], result["reason"]) == (CORRUPT, "empty object (after gzip decompression)")


@pytest.mark.parametrize(
    "key, data, reason",
    [
        ("a.csv", b"id,name\n", "header only, no data rows"),
        ("a.csv", b"id,name", "header only, no data rows"),
        ("a.tsv", b"id\tname\n", "header only, no data rows"),
        ("a.txt", b"id   name\n", "header only, no data rows"),
        ("a.csv.gz", gzip.compress(b"id,name\n", mtime=0), "header only, no data rows"),
        ("a.json", b"[]", "empty JSON array"),
        ("a.parquet", parquet_bytes(FRAME.iloc[:0]), "schema only, no rows"),
    ],
)
def test_header_only_is_valid_with_zero_rows(key, data, reason):
    result = run(key, data)
    assert (result["status"], result["rows"], result["reason"]) == (VALID, 0, reason)


# ---------------------------------------------------------------------------------------------- corrupt objects
NOT_UTF8 = ("not valid UTF-8 text, and no byte order mark names another encoding: export it as UTF-8, "
            "or as UTF-16 with a byte order mark")
BAD_UTF8 = f"{SECRET}\xff".encode("latin-1")
GZ = gzip.compress(CSV + f"9,{SECRET},1\n".encode() * 200, mtime=0)

CORRUPT_CASES = [
    ("ragged-first-row.csv", f"a,b\n1,2,{SECRET}\n".encode(), "the first data row has more fields than the header"),
    ("ragged-later-row.csv", f"a,b\n1,2\n3,4\n5,6,{SECRET}\n".encode(), "line 4 has 3 fields, the header has 2"),
    ("ragged.tsv", f"a\tb\n1\t2\n3\t4\t{SECRET}\n".encode(), "line 3 has 3 fields, the header has 2"),
    ("unterminated.csv", f'a,b\n1,"{SECRET}\n2,3\n'.encode(), "unterminated quoted field"),
    ("bad-utf8.csv", b"a,b\n1," + BAD_UTF8 + b"\n", NOT_UTF8),
    ("bad-utf8.tsv", b"a\tb\n1\t" + BAD_UTF8 + b"\n", NOT_UTF8),
    ("bad-utf8.txt", b"id  name\n1   " + BAD_UTF8 + b"\n", NOT_UTF8),
    ("bad-utf8.jsonl", b'{"a": "' + BAD_UTF8 + b'"}\n', NOT_UTF8),
    ("bad-utf8.json", b'["' + BAD_UTF8 + b'"]', NOT_UTF8),
    ("blank.csv", b"\n\n\n", "no columns to parse (blank text)"),
    ("blank.txt", b"\n \n", "no columns to parse (blank text)"),
    ("binary.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)) * 4, NOT_UTF8),
    ("invalid.json", f'{{"a": "{SECRET}", }}'.encode(), "invalid JSON document"),
    ("truncated.json", f'[{{"a": "{SECRET}"}}, '.encode(), "invalid JSON document"),
    ("nan.json", b'{"a": NaN}', "invalid JSON document"),
    ("whitespace.json", b"  \n ", "invalid JSON document"),
    ("invalid.jsonl", f'{{"a": 1}}\n{{"a": "{SECRET}"\n'.encode(), "invalid JSON Lines record"),
    ("garbage.jsonl", f'{{"a": 1}} {SECRET}\n'.encode(), "invalid JSON Lines record"),
    ("blank.jsonl", b"\n\n", "no JSON Lines record (blank lines only)"),
    ("garbage.parquet", SECRET.encode() * 10, "not a readable Parquet file (OSError)"),
    ("truncated.parquet", PARQUET[: len(PARQUET) // 2], "not a readable Parquet file (OSError)"),
    ("truncated.csv.gz", GZ[: len(GZ) // 2], "truncated gzip stream"),
    ("not-gzip.csv.gz", f"a,b\n{SECRET},2\n".encode(), "not a valid gzip stream"),
    ("trailing-garbage.csv.gz", GZ + SECRET.encode(), "not a valid gzip stream"),
    ("bad-crc.csv.gz", GZ[:-8] + b"\0\0\0\0" + GZ[-4:], "gzip CRC or length check failed"),
    ("bad-deflate.csv.gz", GZ[:20] + bytes(b ^ 0x5A for b in GZ[20:60]) + GZ[60:], "corrupt gzip data"),
    ("truncated.parquet.gz", gzip.compress(PARQUET, mtime=0)[:-30], "truncated gzip stream"),
]


@pytest.mark.parametrize("key, data, reason", CORRUPT_CASES, ids=[c[0] for c in CORRUPT_CASES])
def test_corrupt_objects(key, data, reason):
    result = run(key, data, chunk_rows=2)
    assert result == {
        "status": CORRUPT,
        "format": detect_format(key).label,
        "reason": reason,
        "rows": None,
        "checksum": ABSENT,
    }


def test_corrupt_row_far_into_the_file_is_found():
    data = b"a,b\n" + b"1,2\n" * 30_000 + b"3,4,5\n" + b"1,2\n" * 10
    result = run("late.csv", data, chunk_rows=1000)
    assert (result["status"], result["reason"]) == (CORRUPT, "line 30002 has 3 fields, the header has 2")


# ---------------------------------------------------------------------------------------------- limits
def test_big_json_document_is_unchecked_before_reading():
    class NoRead(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise AssertionError("a JSON document known to be too large must not be downloaded")

    data_size = 10 * 1024 * 1024
    result = check_object(_PrefixThen(b"[1]", NoRead()), "big.json", size=data_size, max_json_bytes=1024 * 1024)
    assert result["status"] == UNCHECKED
    assert result["reason"] == "JSON document larger than 1 MiB cannot be checked in bounded memory"


class _PrefixThen(io.RawIOBase):
    """A stream that returns ``prefix`` and then reads from ``rest``."""

    def __init__(self, prefix: bytes, rest):
        super().__init__()
        self._prefix, self._rest = prefix, rest

    def readable(self):
        return True

    def readinto(self, buffer):
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size], self._prefix = self._prefix[:size], self._prefix[size:]
            return size
        return self._rest.readinto(buffer)


def test_gzip_json_document_is_bounded_while_decompressing():
    document = json.dumps(list(range(200_000))).encode()  # ~1.3 MB decompressed, small compressed
    compressed = gzip.compress(document, mtime=0)
    assert run("a.json.gz", compressed, max_json_bytes=len(document))["rows"] == 200_000
    result = run("a.json.gz", compressed, max_json_bytes=len(document) - 1)
    assert result["status"] == UNCHECKED
    assert result["reason"].startswith("JSON document larger than")


def test_parquet_that_does_not_fit_in_tmp_is_unchecked(tmp_path, monkeypatch):
    real_usage = core.shutil.disk_usage
    free = core.TMP_HEADROOM_BYTES + 100  # room for 100 bytes

    def usage(path):
        return real_usage(path)._replace(free=free)

    monkeypatch.setattr(core.shutil, "disk_usage", usage)
    result = run("a.parquet", PARQUET, tmp_dir=str(tmp_path))
    assert result["status"] == UNCHECKED
    assert result["reason"].startswith("object does not fit in the free space of the temporary directory")
    # size unknown up front (gzip): the copy stops once it would eat into the headroom
    result = run("a.parquet.gz", gzip.compress(PARQUET, mtime=0), tmp_dir=str(tmp_path))
    assert result["status"] == UNCHECKED
    assert list(tmp_path.iterdir()) == []


def test_parquet_feature_fastparquet_cannot_read_is_unchecked(monkeypatch):
    import fastparquet

    def unsupported(self, *args, **kwargs):
        raise NotImplementedError("Encoding 99")
        yield  # pragma: no cover

    monkeypatch.setattr(fastparquet.ParquetFile, "iter_row_groups", unsupported)
    result = run("a.parquet", PARQUET)
    assert (result["status"], result["reason"]) == (UNCHECKED, "uses a Parquet feature fastparquet cannot read")


def test_deeply_nested_json_is_unchecked():
    result = run("deep.json", b"[" * 200_000 + b"]" * 200_000)
    assert (result["status"], result["reason"]) == (UNCHECKED, "JSON document nested too deeply to check")


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        check_object(io.BytesIO(CSV), "a.csv", chunk_rows=0)


# ---------------------------------------------------------------------------------------------- checksums
def test_sha256_verified_and_mismatch():
    assert run("a.csv", CSV, checksum=sha256_of(CSV))["checksum"] == VERIFIED
    result = run("a.csv", CSV, checksum=sha256_of(CSV + b"4,x,1\n"))
    assert result == {"status": CORRUPT, "format": "csv", "reason": "checksum mismatch (SHA256)", "rows": None,
                      "checksum": MISMATCH}


def test_other_full_object_algorithms():
    crc = ExpectedChecksum("CRC32", b64(zlib.crc32(CSV).to_bytes(4, "big")))
    sha1 = ExpectedChecksum("SHA1", b64(hashlib.sha1(CSV).digest()))
    assert run("a.csv", CSV, checksum=crc)["checksum"] == VERIFIED
    assert run("a.csv", CSV, checksum=sha1)["checksum"] == VERIFIED
    assert run("a.csv", CSV + b"\n", checksum=crc)["checksum"] == MISMATCH


def test_checksum_covers_the_raw_gzip_bytes():
    compressed = gzip.compress(CSV, mtime=0)
    assert run("a.csv.gz", compressed, checksum=sha256_of(compressed))["checksum"] == VERIFIED
    assert run("a.csv.gz", compressed, checksum=sha256_of(CSV))["checksum"] == MISMATCH


def test_unread_remainder_is_drained_through_the_hash():
    # The parser stops at the first bad row of a 1 MB file; the checksum still covers every byte.
    data = b"a,b\n1,2,3\n" + b"1,2\n" * 250_000
    result = run("a.csv", data, checksum=sha256_of(data))
    assert (result["status"], result["checksum"]) == (CORRUPT, VERIFIED)
    assert result["reason"] == "the first data row has more fields than the header"
    tampered = data[:-1] + b"\r"
    assert run("a.csv", tampered, checksum=sha256_of(data))["checksum"] == MISMATCH
    # unknown formats and refused JSON documents are hashed too
    assert run("a.bin", data, checksum=sha256_of(data))["checksum"] == VERIFIED
    big = run("a.json", JSON_ARRAY, checksum=sha256_of(JSON_ARRAY), max_json_bytes=10)
    assert (big["status"], big["checksum"]) == (UNCHECKED, VERIFIED)


def test_mismatch_wins_over_a_parse_error():
    data = b"a,b\n1,2,3\n"
    result = run("a.csv", data, checksum=sha256_of(b"other"))
    assert (result["status"], result["reason"], result["checksum"]) == (CORRUPT, "checksum mismatch (SHA256)", MISMATCH)


def test_checksum_note_is_reported_when_not_verified():
    result = run("a.csv", CSV, checksum_note="composite multipart SHA256 checksum not verified")
    assert result["checksum"] == ABSENT
    assert result["reason"] == "parsed 3 rows; composite multipart SHA256 checksum not verified"


SHA = b64(hashlib.sha256(b"x").digest())


@pytest.mark.parametrize(
    "head, algorithm, note",
    [
        ({"ChecksumSHA256": SHA, "ChecksumType": "FULL_OBJECT", "ETag": '"abc"'}, "SHA256", None),
        ({"ChecksumSHA256": SHA, "ETag": '"abc"'}, "SHA256", None),  # moto: no ChecksumType
        ({"ChecksumCRC32": "AAAAAA==", "ChecksumType": "FULL_OBJECT", "ETag": '"abc-3"'}, "CRC32", None),
        ({"ChecksumSHA1": b64(hashlib.sha1(b"x").digest()), "ETag": '"abc"'}, "SHA1", None),
        ({"ChecksumSHA256": SHA + "-3", "ChecksumType": "COMPOSITE", "ETag": '"abc-3"'}, None,
         "composite multipart SHA256 checksum not verified"),
        ({"ChecksumSHA256": SHA + "-3", "ETag": '"abc-3"'}, None, "composite multipart SHA256 checksum not verified"),
        ({"ChecksumSHA256": SHA, "ETag": '"abc-2"'}, None, "composite multipart SHA256 checksum not verified"),
        ({"ChecksumCRC64NVME": "AAAAAAAAAAA=", "ETag": '"abc"'}, None,
         "CRC64NVME checksum not verified (no implementation in the runtime)"),
        ({"ChecksumCRC32C": "AAAAAA==", "ETag": '"abc"'}, None,
         "CRC32C checksum not verified (no implementation in the runtime)"),
        ({"ChecksumSHA256": "not base64!", "ETag": '"abc"'}, None, "stored SHA256 checksum is not valid base64"),
        ({"ETag": '"abc"'}, None, None),
        ({}, None, None),
    ],
)
def test_expected_checksum_from_head(head, algorithm, note):
    checksum, why = expected_checksum(head)
    assert (checksum.algorithm if checksum else None, why) == (algorithm, note)


# ---------------------------------------------------------------------------------------------- stream failures
class _FailingStream:
    def __init__(self, data: bytes, fail_after: int, error: BaseException):
        self._data, self._fail_after, self._error, self._pos = data, fail_after, error, 0

    def read(self, size: int = -1) -> bytes:
        if self._pos >= self._fail_after:
            raise self._error
        size = len(self._data) if size < 0 else size
        chunk = self._data[self._pos : min(self._pos + size, self._fail_after)]
        self._pos += len(chunk)
        return chunk


class NetworkBlip(Exception):
    pass


@pytest.mark.parametrize("key", ["a.csv", "a.csv.gz", "a.jsonl", "a.txt", "a.json", "a.parquet", "a.bin"])
def test_stream_errors_propagate_and_are_not_called_corrupt(key):
    payload = {"a.csv": CSV * 2000, "a.jsonl": JSONL * 2000, "a.txt": FWF * 2000, "a.json": JSON_ARRAY * 1,
               "a.parquet": PARQUET, "a.bin": b"x" * 5000}.get(key) or gzip.compress(CSV * 2000, mtime=0)
    stream = _FailingStream(payload, len(payload) // 2, NetworkBlip("connection reset"))
    with pytest.raises(NetworkBlip):
        check_object(stream, key, size=len(payload), checksum=sha256_of(payload))


def test_transport_checksum_failure_is_a_mismatch():
    stream = _FailingStream(CSV * 100, len(CSV) * 50, core.SourceChecksumError("bad"))
    result = check_object(stream, "a.csv")
    assert (result["status"], result["checksum"]) == (CORRUPT, MISMATCH)


def test_reads_are_bounded():
    sizes = []

    class Recording(io.BytesIO):
        def read(self, size=-1):
            sizes.append(size)
            return super().read(size)

    data = b"a,b\n" + b"1,2\n" * 200_000
    for key, payload in [("a.csv", data), ("a.csv.gz", gzip.compress(data, mtime=0)), ("a.parquet", PARQUET)]:
        sizes.clear()
        check_object(Recording(payload), key, checksum=sha256_of(payload))
        assert sizes and all(0 < size <= core.SPOOL_CHUNK_BYTES for size in sizes), (key, max(sizes))


# ---------------------------------------------------------------------------------------------- memory
class GeneratedCsv(io.RawIOBase):
    """A deterministic CSV of about ``target`` bytes, generated while it is read (never held whole)."""

    HEADER = b"id,name,amount,city,comment\n"

    def __init__(self, target: int):
        super().__init__()
        self.block = "".join(
            f"{j},name-{j % 977},{j * 3.25:.2f},city-{j % 131},some free text number {j}\n" for j in range(2000)
        ).encode()
        self.rows = (target // len(self.block)) * 2000
        self.size = len(self.HEADER) + (target // len(self.block)) * len(self.block)
        self.pos = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        count = min(len(view), self.size - self.pos)
        done = 0
        while done < count:
            at = self.pos + done
            if at < len(self.HEADER):
                source = memoryview(self.HEADER)[at:]
            else:
                source = memoryview(self.block)[(at - len(self.HEADER)) % len(self.block) :]
            take = min(len(source), count - done)
            view[done : done + take] = source[:take]
            done += take
        self.pos += count
        return count


def test_large_csv_is_parsed_in_bounded_memory():
    target = 50 * 1000 * 1000
    digest = hashlib.sha256()
    generator = GeneratedCsv(target)
    while chunk := generator.read(4 * 1024 * 1024):
        digest.update(chunk)
    stream = GeneratedCsv(target)
    assert stream.size > 45_000_000

    tracemalloc.start()
    try:
        result = check_object(
            stream,
            "big.csv",
            size=stream.size,
            chunk_rows=5_000,
            checksum=ExpectedChecksum("SHA256", b64(digest.digest())),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result == {**result, "status": VALID, "rows": stream.rows, "checksum": VERIFIED}
    # A full read (or any copy of the object) alone would exceed this; chunked parsing stays at a few MB.
    assert peak < 0.4 * stream.size, f"peak {peak / 1e6:.1f} MB for a {stream.size / 1e6:.1f} MB object"


# ---------------------------------------------------------------------- encodings data arrives in
ROSTER = "name,city\nÅsa,Malmö\nJosé,São Paulo\n李,北京\n"
ENCODED_CASES = [
    ("utf8.csv", ROSTER.encode("utf-8"), 3),
    ("utf8-bom.csv", codecs.BOM_UTF8 + ROSTER.encode("utf-8"), 3),
    ("utf16-le.csv", ROSTER.encode("utf-16"), 3),  # Python writes the little-endian mark, as Excel does
    ("utf16-be.csv", codecs.BOM_UTF16_BE + ROSTER.encode("utf-16-be"), 3),
    ("utf16.tsv", ROSTER.replace(",", "\t").encode("utf-16"), 3),
    ("utf32.csv", ROSTER.encode("utf-32"), 3),
    ("utf16.jsonl", '{"name": "Åsa"}\n{"name": "李"}\n'.encode("utf-16"), 2),
    ("utf16.json", '[{"name": "Åsa"}, {"name": "李"}]'.encode("utf-16"), 2),
    ("utf16.txt", "name  city\nÅsa   Malmö\n".encode("utf-16"), 1),
    ("utf16.csv.gz", gzip.compress(ROSTER.encode("utf-16"), mtime=0), 3),
]


@pytest.mark.parametrize("key, data, rows", ENCODED_CASES, ids=[c[0] for c in ENCODED_CASES])
def test_text_in_the_encoding_its_byte_order_mark_names_is_valid(key, data, rows):
    result = run(key, data, chunk_rows=2)
    assert (result["status"], result["rows"]) == ("VALID", rows), result


def test_text_that_breaks_its_byte_order_marks_encoding_says_which():
    broken = codecs.BOM_UTF16_LE + "name,city\nÅsa,".encode("utf-16-le") + b"\x00\xd8"  # a lone surrogate half
    result = run("broken-utf16.csv", broken)
    assert (result["status"], result["reason"]) == ("CORRUPT", "not valid UTF-16 text (its byte order mark says UTF-16)")
    latin1 = ROSTER.encode("latin-1", errors="replace")  # no mark: read as UTF-8, and it is not
    result = run("latin1.csv", latin1)
    assert (result["status"], result["reason"]) == ("CORRUPT", NOT_UTF8)
