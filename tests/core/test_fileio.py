"""Atomic writes leave files readable as a plain open() would, not mkstemp's private 0600; the small JSON
reader returns an object or None."""

import os
import stat

from cnn_tui.core import fileio


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_get_the_umask_mode_and_overwrites_keep_theirs(tmp_path):
    previous = os.umask(0o022)
    try:
        fileio._UMASK = 0o022  # noqa: SLF001 - the value read at import; pinned for the test
        target = fileio.write_json(tmp_path / "params.json", {"a": 1})
        assert mode(target) == 0o644
        target.chmod(0o640)
        fileio.write_json(target, {"a": 2})
        assert mode(target) == 0o640 and target.read_text() == '{\n  "a": 2\n}\n'
    finally:
        os.umask(previous)
        fileio._UMASK = fileio._read_umask()  # noqa: SLF001


def test_read_json_object_returns_the_object_or_none_for_anything_else(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"task": "train", "cv": 3}', encoding="utf-8")
    assert fileio.read_json_object(good) == {"task": "train", "cv": 3}
    assert fileio.read_json_object(str(good)) == {"task": "train", "cv": 3}  # a str path too
    assert fileio.read_json_object(tmp_path / "missing.json") is None
    assert fileio.read_json_object(tmp_path) is None  # a folder, not a file
    broken = tmp_path / "broken.json"
    broken.write_text('{"task": "tr', encoding="utf-8")  # a writer killed mid-write (not one of ours)
    assert fileio.read_json_object(broken) is None
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"name": "caf\xe9"}')  # not UTF-8
    assert fileio.read_json_object(latin) is None
    listed = tmp_path / "list.json"
    listed.write_text('[{"task": "train"}]', encoding="utf-8")
    assert fileio.read_json_object(listed) is None
    number = tmp_path / "number.json"
    number.write_text("3", encoding="utf-8")
    assert fileio.read_json_object(number) is None
    empty = tmp_path / "empty.json"
    empty.write_text("{}", encoding="utf-8")
    assert fileio.read_json_object(empty) == {}  # an empty object is an object
