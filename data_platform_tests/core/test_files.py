import hashlib
import io
import os
from pathlib import Path

import pytest

from data_platform.core.files import atomic_file, file_md5, regular_file_mode, write_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as out:
        out.write(b"half of the new")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["data.json"]


def test_commit_inside_the_block_replaces_once_with_the_asked_mode(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    write_atomically(target, b"first")
    assert target.stat().st_mode & 0o777 == 0o600  # default: private, like mkstemp
    with atomic_file(target, mode=regular_file_mode()) as out:
        out.write(b"second")
        out.commit()
        assert target.read_bytes() == b"second"
    assert target.stat().st_mode & 0o777 == regular_file_mode()
    assert os.listdir(tmp_path) == ["data.bin"]


def test_file_md5_reads_paths_and_open_files(tmp_path: Path) -> None:
    content = os.urandom(3 * 1024 * 1024 + 17)  # more than one read block
    (tmp_path / "f").write_bytes(content)
    expected = hashlib.md5(content).hexdigest()
    assert file_md5(tmp_path / "f") == expected
    assert file_md5(io.BytesIO(content)) == expected
