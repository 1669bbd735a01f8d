"""Check job inputs and outputs before any work starts.

Every problem here is a user's input error (exit 2) found before Spark or the cloud is
touched: a missing path, an empty directory, a file that is not UTF-8 text, an output
directory that is really a file. Text files are decoded in full with an incremental
UTF-8 decoder (linear, ~1 GB/s) because Spark would otherwise replace bad bytes with
U+FFFD silently and the counts would no longer be exact.
"""

from __future__ import annotations

import codecs
import gzip
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sparkube.errors import InputError

_CHUNK = 1 << 20
#: Compressions Spark could read but sparkube does not check; refused with advice.
_OTHER_COMPRESSIONS = (".bz2", ".deflate", ".zst", ".lz4", ".snappy", ".xz", ".zip")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: Spark's file listing skips names starting with these; we do the same so that the
#: local check and the job see the same files.
_HIDDEN_PREFIXES = (".", "_")


@dataclass(frozen=True)
class InputFile:
    path: Path
    size: int

    @property
    def compressed(self) -> bool:
        return self.path.suffix == ".gz"


def _expand(path: Path) -> list[Path]:
    if not path.exists():
        raise InputError(f"Input {path} does not exist; check the path.")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"Input {path} is not a regular file or directory; pass a text file.")
    files: list[Path] = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(_HIDDEN_PREFIXES))
        files.extend(
            Path(root) / name for name in sorted(names) if not name.startswith(_HIDDEN_PREFIXES)
        )
    files = [f for f in files if f.is_file()]
    if not files:
        raise InputError(f"Directory {path} contains no files; put text files in it.")
    return files


def _not_utf8(path: Path, offset: int) -> InputError:
    return InputError(
        f"{path} is not UTF-8 text (bad byte at offset {offset}); convert it, e.g. "
        f"iconv -f LATIN1 -t UTF-8 {path} > {path.name}.utf8, or leave it out."
    )


def _check_utf8(path: Path) -> None:
    if path.suffix.lower() in _OTHER_COMPRESSIONS:
        raise InputError(
            f"{path} is {path.suffix} compressed, and only .gz is supported; decompress it "
            "or recompress it with gzip."
        )
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                if offset == 0 and chunk.startswith(_UTF16_BOMS):
                    raise InputError(
                        f"{path} is UTF-16 text; convert it with iconv -f UTF-16 -t UTF-8 "
                        f"{path} > {path.name}.utf8."
                    )
                if b"\x00" in chunk:
                    raise InputError(
                        f"{path} looks binary (it contains NUL bytes); pass UTF-8 text files only."
                    )
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    raise _not_utf8(path, offset + exc.start) from None
                offset += len(chunk)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise _not_utf8(path, offset - pending) from None
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise InputError(f"{path} is not a valid gzip file; recompress it with gzip.") from None
    except PermissionError:
        raise InputError(f"{path} cannot be read (permission denied); fix its mode.") from None


#: Problems listed under the one error sentence; more are counted, not listed.
MAX_LISTED = 20


def resolve_inputs(paths: Iterable[Path], *, check_text: bool = True) -> list[InputFile]:
    """Expand directories and check every file. Raises one :class:`InputError` naming
    every input that cannot be used (a missing path, a file that is not UTF-8 text...),
    so they can all be fixed before the next try."""
    seen: dict[Path, InputFile] = {}
    problems: list[InputError] = []
    given = list(paths)
    if not given:
        raise InputError("No input given; pass one or more text files or directories.")
    for path in given:
        try:
            files = _expand(path)
        except InputError as exc:
            problems.append(exc)
            continue
        for file in files:
            resolved = file.resolve()
            if resolved in seen:
                continue
            try:
                if check_text:
                    _check_utf8(file)
            except InputError as exc:
                problems.append(exc)
                continue
            seen[resolved] = InputFile(resolved, file.stat().st_size)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        listed = [p.message for p in problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            listed.append(f"... and {len(problems) - MAX_LISTED} more")
        raise InputError(
            f"{len(problems)} of the inputs cannot be used (listed below); fix or leave "
            "them out, then run again.",
            detail="\n".join(listed),
        )
    return list(seen.values())


def check_output_dir(path: Path) -> Path:
    """The output directory must be a directory or not exist yet."""
    if path.exists() and not path.is_dir():
        raise InputError(
            f"Output directory {path} is a file; pass --output-dir with a directory path."
        )
    if path.is_dir() and not os.access(path, os.W_OK):
        raise InputError(f"Output directory {path} is not writable; choose another --output-dir.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(
                    f"{parent} is a file, so {path} cannot be created; fix --output-dir."
                )
            if not os.access(parent, os.W_OK):
                raise InputError(f"{parent} is not writable; choose another --output-dir.")
            break
    return path
