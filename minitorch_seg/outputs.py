"""Where the command line writes: a folder checked before any work, and one sentence for a failed write.

``check_writable(folder)`` is called before a command starts working (training, predicting,
generating data), so that an unwritable ``--out`` costs a second, not an epoch: the folder (or,
when it does not exist yet, the nearest folder above it that does) must be a folder this process
may create files in. It creates nothing itself, so a command that then fails to start leaves no
empty folder behind. ``os.access`` answers for this process's own user, its groups and ACLs, and a
read-only file system; root passes the permission bits, as it can write anyway.

``writing(path, advice)`` turns an ``OSError`` raised while writing ``path`` (no space left, a file
larger than ``RLIMIT_FSIZE`` allows, a permission taken away mid-run) into an ``OutputError``:
one sentence naming the file and the reason. Files are written atomically
(``checkpoint.atomic_write_bytes``), so a failed write leaves the previous version whole.
"""
import contextlib
import os

__all__ = ["OutputError", "check_writable", "reason", "writing"]


class OutputError(Exception):
    """A file or folder the command must write cannot be written; the message names it."""


def _nearest_existing(path):
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def check_writable(folder, what="--out", subfolders=()):
    """Raise ``OutputError`` unless files can be created in ``folder`` (made later if need be).

    ``what`` names the folder in the message (an option such as ``--out``). ``subfolders``:
    names inside ``folder`` the caller will write into; any that exist must be writable folders too.
    """
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        if existing == os.path.abspath(folder):
            raise OutputError(f"{what} {folder} is a file; expected a folder to write into.")
        raise OutputError(f"{what} {folder} cannot be made because {existing} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == os.path.abspath(folder) else f" cannot be made: {existing}"
        raise OutputError(f"{what} {folder}{where} is not writable (permission denied or a read-only file "
                          "system); choose another folder.")
    for name in subfolders:
        inner = os.path.join(folder, name)
        if os.path.lexists(inner):
            check_writable(inner, what)


def reason(error):
    """The short reason of an OSError, without its errno and file name: "No space left on device"."""
    return error.strerror or type(error).__name__


@contextlib.contextmanager
def writing(path, advice=""):
    """Inside the block, an OSError becomes ``OutputError("Cannot write PATH (REASON); ADVICE.")``."""
    try:
        yield
    except OSError as error:
        tail = f"; {advice}" if advice else ""
        raise OutputError(f"Cannot write {path} ({reason(error)}){tail}.") from None
