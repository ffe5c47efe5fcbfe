"""`--resume-file`: atomic replacement, throttled writes, the last cursor at the end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.observe_client import ObserveError, ResumeFile


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_first_run_has_no_cursor_and_writes_one(tmp_path: Path) -> None:
    path = tmp_path / "cursor"
    resume = ResumeFile(path)
    assert resume.load() is None
    resume.update(42)
    assert path.read_text() == "42\n"
    assert ResumeFile(path).load() == 42
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_writes_are_throttled_and_the_last_cursor_is_flushed(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "cursor"
    resume = ResumeFile(path, interval=0.5, clock=clock)
    resume.update(1)
    for cursor in range(2, 1001):  # a burst: no write until half a second has passed
        clock.now += 0.0001
        resume.update(cursor)
    assert path.read_text() == "1\n" and resume.writes == 1
    clock.now += 0.5
    resume.update(1001)
    assert path.read_text() == "1001\n" and resume.writes == 2
    resume.update(1002)
    resume.flush()  # at exit
    assert path.read_text() == "1002\n" and resume.writes == 3
    resume.flush()  # nothing new: no write
    assert resume.writes == 3


def test_the_file_is_replaced_never_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "cursor"
    resume = ResumeFile(path)
    resume.update(7)
    inode = path.stat().st_ino
    resume.cursor = 8
    resume.flush()
    assert path.stat().st_ino != inode and path.read_text() == "8\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cursor"]  # no temporary left


@pytest.mark.parametrize("content", [b"", b"abc\n", b"-5\n", b"1" * 100, b"1.5\n",
                                    b"99999999999999999999999\n"])
def test_a_file_that_is_not_a_cursor_is_refused_by_name(tmp_path: Path,
                                                         content: bytes) -> None:
    path = tmp_path / "cursor"
    path.write_bytes(content)
    with pytest.raises(ObserveError, match=r"--resume-file .*cursor: not a cursor"):
        ResumeFile(path).load()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_directory_is_an_error_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(ObserveError, match="--resume-file"):
        ResumeFile(folder / "cursor").update(1)


def test_a_missing_directory_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ObserveError, match=r"--resume-file .*No such file"):
        ResumeFile(tmp_path / "nowhere" / "cursor").update(1)
