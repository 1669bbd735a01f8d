from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from sparkube.errors import InputError
from sparkube.spark.inputs import check_output_dir, resolve_inputs


def test_files_and_directories_expand_sorted_and_deduplicated(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_text("b")
    (tmp_path / "d" / "a.txt").write_text("a")
    (tmp_path / "d" / "sub" / "c.txt.gz").write_bytes(gzip.compress(b"c"))
    (tmp_path / "d" / ".hidden").write_text("skip me")
    (tmp_path / "d" / "_SUCCESS").write_text("")
    files = resolve_inputs([tmp_path / "d", tmp_path / "d" / "a.txt"])
    names = [f.path.name for f in files]
    assert names == ["a.txt", "b.txt", "c.txt.gz"]
    assert files[2].compressed


def test_missing_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope.txt does not exist; check the path"):
        resolve_inputs([tmp_path / "nope.txt"])


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".only-hidden").write_text("x")
    with pytest.raises(InputError, match="contains no files"):
        resolve_inputs([tmp_path / "empty"])


def test_latin1_file_is_named_with_offset_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "latin.txt"
    bad.write_bytes(b"ok text " + "café".encode("latin-1"))
    with pytest.raises(
        InputError, match=r"latin.txt is not UTF-8 text \(bad byte at offset 11\).*iconv"
    ):
        resolve_inputs([bad])


def test_binary_and_bad_gzip(tmp_path: Path) -> None:
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x7fELF\x00\x01\x02")
    with pytest.raises(InputError, match="looks binary"):
        resolve_inputs([binary])
    fake = tmp_path / "fake.gz"
    fake.write_text("not gzip at all")
    with pytest.raises(InputError, match="not a valid gzip file"):
        resolve_inputs([fake])
    bad_inside = tmp_path / "in.gz"
    bad_inside.write_bytes(gzip.compress(b"ok \xff bad"))
    with pytest.raises(InputError, match=r"in\.gz is not UTF-8"):
        resolve_inputs([bad_inside])


def test_truncated_utf8_at_end(tmp_path: Path) -> None:
    f = tmp_path / "cut.txt"
    f.write_bytes(b"fin" + "é".encode()[:1])
    with pytest.raises(InputError, match=r"cut.txt is not UTF-8 text \(bad byte at offset 3\)"):
        resolve_inputs([f])


def test_output_dir_checks(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(InputError, match="is a file"):
        check_output_dir(tmp_path / "file" / "sub")
    assert check_output_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"


def test_utf16_gets_its_own_advice(tmp_path: Path) -> None:
    f = tmp_path / "notepad.txt"
    f.write_bytes("hello".encode("utf-16"))
    with pytest.raises(InputError, match="is UTF-16 text; convert it with iconv -f UTF-16"):
        resolve_inputs([f])


def test_every_unusable_input_is_listed_at_once(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "good.txt").write_text("fine words\n")
    (tmp_path / "d" / "latin.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "d" / "utf16.txt").write_bytes("hello".encode("utf-16"))
    (tmp_path / "d" / "zz.bin").write_bytes(b"\x00\x01")
    with pytest.raises(InputError) as info:
        resolve_inputs([tmp_path / "d", tmp_path / "missing.txt"])
    assert info.value.message.startswith("4 of the inputs cannot be used")
    lines = (info.value.detail or "").splitlines()
    assert len(lines) == 4
    assert "latin.txt is not UTF-8 text (bad byte at offset 3)" in lines[0]
    assert "utf16.txt is UTF-16 text" in lines[1]
    assert "zz.bin looks binary" in lines[2]
    assert "missing.txt does not exist" in lines[3]
    assert not any("good.txt" in line for line in lines)


def test_a_long_list_of_bad_files_is_cut_and_counted(tmp_path: Path) -> None:
    for i in range(25):
        (tmp_path / f"bad{i:02d}.txt").write_bytes(b"\xff")
    with pytest.raises(InputError) as info:
        resolve_inputs([tmp_path])
    lines = (info.value.detail or "").splitlines()
    assert info.value.message.startswith("25 of the inputs")
    assert len(lines) == 21 and lines[-1] == "... and 5 more"
