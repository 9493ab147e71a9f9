"""Checks of the files and folders a command will write, made before it starts any work.

Each check returns why the path cannot be used, as a short phrase to print after the path
(``is read-only (mode 0444)``), or None. They look at the file system and create nothing
that stays: where only trying tells (a read-only file system, a folder of ``/proc``), a
temporary file is created in the folder and removed at once.

A file or folder without any write permission bit counts as read-only even for root, who
could write it anyway: like ``rm``'s "write-protected" question, the mode is taken as the
owner's intent (an archived recording chmod'ed to 0444 stays untouched).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

#: The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def _read_only(mode: int) -> str | None:
    if mode & 0o222:
        return None
    return f"read-only (mode {stat.S_IMODE(mode):04o})"


def folder_problem(folder: Path) -> str | None:
    """Why new files cannot be created in ``folder``, or None."""
    try:
        info = folder.stat()
    except OSError as exc:
        return f"cannot use folder {folder}: {exc.strerror}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    if (read_only := _read_only(info.st_mode)) is not None:
        return f"folder {folder} is {read_only}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} is not writable (permission denied)"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot create files in folder {folder}: {exc.strerror}"
    return None


def _nearest_existing(path: Path) -> Path:
    for folder in (path, *path.parents):
        if folder.exists():
            return folder
    return Path(path.anchor)


def creatable_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be used as an output folder that is created with its parents
    if missing (``mkdir(parents=True, exist_ok=True)``), or None."""
    folder = folder.absolute()
    if folder.exists():
        return folder_problem(folder)
    ancestor = _nearest_existing(folder)
    problem = folder_problem(ancestor)
    return None if problem is None else f"cannot create it: {problem}"


def writable_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written (created, or replaced if it exists) in its existing
    folder, or None."""
    if path.is_dir():
        return "is a folder, not a file"
    if path.exists():
        info = path.stat()
        if (read_only := _read_only(info.st_mode)) is not None:
            return f"is {read_only}"
        if not os.access(path, os.W_OK):
            return "is not writable (permission denied)"
        return None
    folder = path.absolute().parent
    if not folder.exists():
        return f"folder {folder} does not exist"
    problem = folder_problem(folder)
    return None if problem is None else f"cannot create it: {problem}"


def database_problem(path: Path) -> str | None:
    """Why the recorder could not open ``path`` as its SQLite database, to write, or None.

    An existing file must be a writable SQLite database (or empty) in a writable folder
    (SQLite keeps its -wal and -shm files beside it); a new one must be creatable, its
    missing folders included (the recorder creates them).
    """
    if path.is_dir():
        return "is a folder, not a database file"
    if not path.exists():
        return creatable_folder_problem(path.absolute().parent)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if (read_only := _read_only(info.st_mode)) is not None:
        return f"is {read_only}"
    if not os.access(path, os.R_OK | os.W_OK):
        return "is not writable (permission denied)"
    try:
        with path.open("r+b") as file:  # opens to write, changes nothing
            head = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"cannot be opened to write: {exc.strerror}"
    if head and head != SQLITE_HEADER:
        return "is not an SQLite database"
    problem = folder_problem(path.absolute().parent)
    if problem is not None:
        return f"{problem} (SQLite writes its journal beside the database)"
    return None
