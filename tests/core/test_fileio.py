"""Atomic writes leave files readable as a plain open() would, not mkstemp's private 0600."""

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
