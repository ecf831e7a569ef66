"""The files a user points the CLI at: which become objects, and a clear word on every one that cannot.

A path given on the command line must be a readable regular file or a directory: anything else
(missing, a broken or looping link, a FIFO, a device, unreadable) is a usage error, all of them listed
at once. Inside a directory, regular files are collected (links are followed, each real directory
once); a FIFO, socket, device or broken link found there is skipped with a note, because a user who
points at a folder wants its files, and reading a FIFO would wait forever. A file that cannot be read
is an error wherever it is: it was meant to be scanned.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

# Files the walk never uploads: version-control and OS clutter.
SKIPPED_NAMES = {".git", ".DS_Store", "__pycache__", ".svn", ".hg"}
MAX_FILE_BYTES = 512 * 1024 * 1024
S3_MAX_KEY_BYTES = 1024


class UsageError(Exception):
    """Bad input: printed as one clear message, exit code 2."""


@dataclass
class Collected:
    """Object key -> file to upload, and a note for each file skipped on the way."""

    files: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def collect_files(paths: Sequence[str]) -> Collected:
    """Keys are POSIX paths relative to each directory given (the file name for a file)."""
    collected = Collected()
    problems: list[str] = []
    for given in paths:
        problem = _given_problem(given)
        if problem:
            problems.append(f"{given}: {problem}")
            continue
        path = Path(given)
        entries = [(path.name, path)] if path.is_file() else list(_walk(path, collected.skipped, problems))
        if not entries and path.is_dir():
            problems.append(f"{given}: the directory has no files")
        for key, file in entries:
            problem = _key_problem(collected.files, key, file)
            if problem:
                problems.append(problem)
            else:
                collected.files[key] = file
    if problems:
        raise UsageError("Cannot run the pipeline on these paths:\n- " + "\n- ".join(problems))
    return collected


def read_files(files: dict[str, Path]) -> dict[str, bytes]:
    """The bytes of every file; one UsageError lists every file that cannot be read."""
    bodies, problems = {}, []
    for key, path in files.items():
        try:
            bodies[key] = path.read_bytes()
        except OSError as error:
            problems.append(f"{path}: cannot be read ({error.strerror or error})")
    if problems:
        raise UsageError("Cannot read these files:\n- " + "\n- ".join(problems))
    return bodies


def _given_problem(given: str) -> Optional[str]:
    """Why a path given on the command line gives no files (None: it is a readable file or a directory)."""
    path = Path(given)
    if not os.path.lexists(path):
        return "no such file or directory"
    link = _link_problem(path)
    if link:
        return link
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return None if os.access(path, os.R_OK | os.X_OK) else "the directory cannot be read (permission denied)"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({_kind(mode)}): only files and directories can be scanned"
    return None if os.access(path, os.R_OK) else "cannot be read (permission denied)"


def _link_problem(path: Path) -> Optional[str]:
    """A broken or looping symbolic link, said plainly (None: not a link, or a good one)."""
    if not path.is_symlink():
        return None
    try:
        path.resolve(strict=True)
    except FileNotFoundError:
        return f"broken symbolic link (to {os.readlink(path)})"
    except (RuntimeError, OSError) as error:
        if isinstance(error, RuntimeError) or error.errno == errno.ELOOP:
            return "symbolic link loop"
        raise
    return None


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def _walk(directory: Path, skipped: list[str], problems: list[str]) -> Iterator[tuple[str, Path]]:
    """(key relative to ``directory``, file) of every regular file under it, sorted; links followed,
    each real directory once; special files and broken links skipped with a note."""
    seen = {directory.resolve()}
    for root, dirs, names in os.walk(directory, followlinks=True):
        dirs[:] = [d for d in sorted(dirs) if d not in SKIPPED_NAMES and _enter(Path(root) / d, seen, skipped)]
        for name in sorted(n for n in names if n not in SKIPPED_NAMES):
            file = Path(root) / name
            key = file.relative_to(directory).as_posix()
            problem = _link_problem(file)
            if problem:
                skipped.append(f"{file}: skipped, {problem}")
                continue
            mode = file.stat().st_mode
            if not stat.S_ISREG(mode):
                skipped.append(f"{file}: skipped, {_kind(mode)}")
            elif not os.access(file, os.R_OK):
                problems.append(f"{file}: cannot be read (permission denied)")
            else:
                yield key, file


def _enter(directory: Path, seen: set[Path], skipped: list[str]) -> bool:
    """Whether the walk goes into ``directory``: not a broken or looping link, not a directory already walked."""
    problem = _link_problem(directory)
    if problem:
        skipped.append(f"{directory}: skipped, {problem}")
        return False
    real = directory.resolve()
    if real in seen:
        skipped.append(f"{directory}: skipped, a link to a directory already included ({real})")
        return False
    seen.add(real)
    return True


def _key_problem(files: dict[str, Path], key: str, file: Path) -> Optional[str]:
    """Why ``file`` cannot be uploaded under ``key`` next to the files collected so far (None: it can)."""
    if key in files and files[key].resolve() != file.resolve():
        return f"{key}: two different files would get this key ({files[key]} and {file})"
    if len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        return f"{key[:60]}...: the key is longer than S3's {S3_MAX_KEY_BYTES} bytes"
    if file.stat().st_size > MAX_FILE_BYTES:
        return f"{key}: larger than the local engine's {MAX_FILE_BYTES // 2**20} MiB limit"
    return None
