"""Output folders that appear whole or not at all.

Everything is written into a hidden temp sibling of the destination and renamed into place
when the run succeeds. A failure, Ctrl-C or crash leaves the previous artefact as it was and
no partial one under the destination name. A ``manifest.json`` marks a folder as ours: an
existing folder without it is refused unless ``force`` is set, so a typo in ``--out`` cannot
wipe unrelated files. A lock file beside the destination makes a second concurrent run into
the same folder fail at once instead of interleaving. A run killed outright (SIGKILL, power
loss) leaves its hidden temp sibling behind; the next run into the same folder, once it holds the
lock (so no live run owns them), deletes such leftovers, and puts the previous artefact back if
the kill came between the two renames that swap the new folder in. The folder is created as a
plain ``mkdir`` creates one (mode 0777 less the umask), so what it publishes is as readable as
any other output of the user's.

Every command that writes a folder (``export --out``, ``convert --out``, ``parity --report``,
``train-parity --report``) writes it through :class:`AtomicOutputDir`; a single output file
(the benchmarks' results) through :func:`write_file`, which never replaces a folder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import re
import shutil
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.runtime.errors import PipelineError, UsageError
from pipeline.runtime.provenance import TOOL_NAME, collect

MANIFEST = "manifest.json"


class AtomicOutputDir:
    """``with AtomicOutputDir(dest) as tmp:`` write into ``tmp``; on success it becomes ``dest``.

    ``reads``: the files and folders the run reads; a destination that is one of them or holds
    one is refused even with ``force`` (replacing it would delete the run's own input)."""

    def __init__(self, destination: Path, *, force: bool = False, reads: Iterable[Path | None] = ()) -> None:
        self.destination = Path(destination).absolute()
        self.force = force
        self.reads = [Path(path) for path in reads if path is not None]
        self.manifest: dict[str, Any] = {"tool": TOOL_NAME}
        self._lock_file: Any = None
        self._temp: Path | None = None

    def check(self) -> None:
        """Refuse the destination now (a file, or a folder this tool did not write without
        ``force``): call it before a long run, so that a bad ``--out`` fails in seconds. The
        check is repeated when the block is entered."""
        self._check_destination()

    def __enter__(self) -> Path:
        self._check_destination()
        parent = self.destination.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(parent / f".{self.destination.name}.lock", "w")
        except OSError as error:
            blocker = next((p for p in (parent, *parent.parents) if p.exists()), parent)
            reason = f"{blocker} is not a folder" if not blocker.is_dir() else error.strerror
            raise UsageError(f"cannot write to output folder {parent}: {reason}") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise PipelineError(
                f"another run is writing to {self.destination} right now; try again when it has finished"
            ) from None
        self._remove_leftovers()
        self._temp = _make_dir(parent, f".{self.destination.name}.partial-")
        return self._temp

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._temp is not None
        try:
            if exc_type is None:
                self._publish(self._temp)
        finally:
            shutil.rmtree(self._temp, ignore_errors=True)
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def _check_destination(self) -> None:
        dest = self.destination
        if dest.exists() and not dest.is_dir():
            raise UsageError(f"output path {dest} exists and is not a folder")
        for path in self.reads:
            resolved = path.resolve()
            if resolved == dest.resolve() or dest.resolve() in resolved.parents:
                raise UsageError(f"output folder {dest} holds the input {path}, which writing it would delete; "
                                 "choose another folder")
        if dest.is_dir() and any(dest.iterdir()) and not is_ours(dest) and not self.force:
            raise UsageError(
                f"output folder {dest} exists and was not written by {TOOL_NAME} "
                f"(no {MANIFEST}); choose another --out or pass --force to replace it"
            )

    def _remove_leftovers(self) -> None:
        """Delete temp siblings of runs into this destination that died (the caller holds the
        lock, so no live run owns one); a previous artefact caught mid-swap is put back first."""
        leftover = re.compile(rf"\.{re.escape(self.destination.name)}\.(partial|old)-[a-z0-9_]{{8}}")
        for sibling in sorted(self.destination.parent.iterdir()):
            match = leftover.fullmatch(sibling.name)
            if match is None or not sibling.is_dir() or sibling.is_symlink():
                continue
            previous = sibling / "previous"
            if match.group(1) == "old" and previous.is_dir() and not self.destination.exists():
                os.rename(previous, self.destination)
            shutil.rmtree(sibling, ignore_errors=True)

    def _publish(self, temp: Path) -> None:
        if "provenance" not in self.manifest:
            self.manifest["provenance"] = collect()  # tool version, git commit, command line
        self.manifest["files"] = sorted(
            str(p.relative_to(temp)) for p in temp.rglob("*") if p.is_file()
        )
        (temp / MANIFEST).write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
        old = None
        if self.destination.exists():
            old = _make_dir(self.destination.parent, f".{self.destination.name}.old-")
        try:
            if old is not None:
                os.rename(self.destination, old / "previous")
            os.rename(temp, self.destination)
        except BaseException as error:  # Ctrl-C between the renames too: put the previous one back
            if old is not None and (old / "previous").is_dir() and not self.destination.exists():
                os.rename(old / "previous", self.destination)
            if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise UsageError(f"cannot write output folder {self.destination}: {error.strerror}") from None
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


_SUFFIX_CHARACTERS = string.ascii_lowercase + string.digits + "_"


def _make_dir(parent: Path, prefix: str) -> Path:
    """A new folder ``<prefix><8 random characters>`` in ``parent``, made with a plain
    ``mkdir`` so that it gets the umask's permissions (``tempfile.mkdtemp`` makes it 0700)."""
    return _new_entry(parent, prefix, lambda path: path.mkdir())


def _new_entry(parent: Path, prefix: str, create: Callable[[Path], object]) -> Path:
    """``parent / <prefix><8 random characters>`` made by ``create`` (which raises
    FileExistsError when the name is taken)."""
    chooser = random.SystemRandom()
    for _ in range(100):
        path = parent / (prefix + "".join(chooser.choices(_SUFFIX_CHARACTERS, k=8)))
        try:
            create(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, f"no unused name {prefix}* in {parent}")


def write_file(destination: Path, text: str) -> None:
    """Write one text file whole or not at all: into a hidden sibling, then renamed over
    ``destination``. A folder is never replaced by a file (:class:`UsageError`). The file gets
    the permissions a plain ``open`` would (0666 less the umask)."""
    destination = Path(destination).absolute()
    check_output_file(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = _new_entry(destination.parent, f".{destination.name}.partial-",
                          lambda path: os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
    except OSError as error:
        raise UsageError(f"cannot write output file {destination}: {error.strerror}") from None
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, destination)
    finally:
        temp.unlink(missing_ok=True)


def check_output_file(destination: Path) -> None:
    """Refuse an output file path that names a folder (call it before a long run)."""
    if Path(destination).is_dir():
        raise UsageError(f"output file {destination} is a folder; choose a file name")


def is_ours(folder: Path) -> bool:
    """True when ``folder`` holds a manifest this tool wrote, or is a subfolder whose files the
    manifest of its parent lists (an export's ``report/``, which ``parity --report`` may rewrite)."""
    manifest = _manifest(folder)
    if manifest is not None:
        return True
    parent = _manifest(folder.parent)
    files = parent.get("files") if parent is not None else None
    return isinstance(files, list) and any(str(f).startswith(f"{folder.name}/") for f in files)


def _manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest this tool wrote into ``folder``, if any."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("tool") == TOOL_NAME else None
