"""Atomic writes: all or nothing, and ordinary permissions."""

import os
import stat

import pytest

from vaekit.atomic import atomic_path, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.bin"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_written_files_get_the_usual_permissions_even_if_the_writer_recreates_the_file(tmp_path):
    target = tmp_path / "w.bin"
    with atomic_path(target) as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # as a writer with its own temp file would
        os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    atomic_write_text(tmp_path / "t.txt", "x")
    assert stat.S_IMODE((tmp_path / "t.txt").stat().st_mode) == 0o666 & ~mask


def test_unused_names_tag_a_file_and_its_companions_alike(tmp_path):
    from vaekit.atomic import unused_names

    assert unused_names(tmp_path, ["a.png", "a.gif"]) == [tmp_path / "a.png", tmp_path / "a.gif"]
    (tmp_path / "a.gif").write_bytes(b"")
    assert unused_names(tmp_path, ["a.png", "a.gif"]) == [tmp_path / "a-2.png", tmp_path / "a-2.gif"]
    (tmp_path / "a-2.png").write_bytes(b"")
    assert unused_names(tmp_path, ["a.png"]) == [tmp_path / "a.png"]
    assert unused_names(tmp_path, ["a.png", "a.gif"]) == [tmp_path / "a-3.png", tmp_path / "a-3.gif"]


def test_final_place_of_a_staging_directory_is_its_target(tmp_path):
    from vaekit.atomic import discard, final_place, staging_directory

    staging = staging_directory(tmp_path / "run")
    try:
        assert final_place(staging) == tmp_path / "run"
    finally:
        discard(staging)
    assert final_place(tmp_path / "run") == tmp_path / "run"
    assert final_place(tmp_path / ".run.new-x") == tmp_path / ".run.new-x"
