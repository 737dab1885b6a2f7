"""Atomic writes: all or nothing, and ordinary permissions."""

import os
import stat

import pytest

from vaekit import atomic
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


def _tree(folder):
    """Every file under ``folder`` with its bytes: what "left as it was" compares."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _old_run(tmp_path):
    target = tmp_path / "run"
    (target / "sub").mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"old weights")
    (target / "sub" / "notes.txt").write_text("the user's notes")
    return target, _tree(target)


@pytest.mark.parametrize("error", [RuntimeError("training failed"), KeyboardInterrupt()])
def test_a_failed_build_leaves_the_old_directory_byte_identical_and_no_staging(tmp_path, error):
    target, before = _old_run(tmp_path)
    with pytest.raises(type(error)), atomic.building(atomic.staging_directory(target), target) as build:
        (build / "model.safetensors").write_bytes(b"half-written")
        raise error
    assert _tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no .run.new-* or .run.old-* left


def test_a_complete_build_replaces_the_directory_whole(tmp_path):
    target, _ = _old_run(tmp_path)
    with atomic.building(atomic.staging_directory(target), target) as build:
        assert atomic.final_place(build) == target
        (build / "model.safetensors").write_bytes(b"new weights")
    assert _tree(target) == {"model.safetensors": b"new weights"}  # nothing of the old run mixed in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_swap_in_puts_the_old_directory_back_when_the_new_one_cannot_be_moved(tmp_path, monkeypatch):
    target, before = _old_run(tmp_path)
    staging = atomic.staging_directory(target)
    (staging / "model.safetensors").write_bytes(b"new weights")
    real_replace, calls = os.replace, []

    def failing_second_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old directory has moved aside; the new one fails to move in
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_second_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic.swap_in(staging, target)
    assert _tree(target) == before


def test_building_in_place_creates_a_new_directory_without_staging(tmp_path):
    target = tmp_path / "new-run"
    target.mkdir()
    with atomic.building(target, target) as build:
        (build / "a.txt").write_text("a")
    assert _tree(target) == {"a.txt": b"a"}
