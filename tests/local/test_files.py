"""Which files the CLI uploads, and the one clear line for each that it cannot (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from macie_pipeline.local.files import UsageError, collect_files, read_files


def test_an_unreadable_file_is_named_and_nothing_is_read_past_it(tmp_path, monkeypatch):
    """Tests run as root, who can read any file: the permission error is raised where reading happens."""
    (tmp_path / "a.csv").write_bytes(b"a\n1\n")
    (tmp_path / "secret.csv").write_bytes(b"s\n1\n")
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.csv":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    collected = collect_files([str(tmp_path)])
    assert sorted(collected.files) == ["a.csv", "secret.csv"]
    with pytest.raises(UsageError) as raised:
        read_files(collected.files)
    assert str(raised.value) == f"Cannot read these files:\n- {tmp_path / 'secret.csv'}: cannot be read (Permission denied)"


def test_keys_longer_than_s3_allows_and_clashing_keys_are_refused(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "same.csv").write_bytes(b"1")
    (tmp_path / "two" / "same.csv").write_bytes(b"2")
    deep = tmp_path / "deep"
    path = deep
    for _ in range(5):
        path = path / ("d" * 220)
    path.mkdir(parents=True)
    (path / "f.csv").write_bytes(b"x")
    with pytest.raises(UsageError) as raised:
        collect_files([str(tmp_path / "one"), str(tmp_path / "two"), str(deep)])
    lines = str(raised.value).splitlines()
    assert lines[1] == f"- same.csv: two different files would get this key ({tmp_path / 'one' / 'same.csv'} and {tmp_path / 'two' / 'same.csv'})"
    assert lines[2].endswith("...: the key is longer than S3's 1024 bytes")
