"""Output folders that appear whole or not at all.

Everything is written into a hidden temp sibling of the destination and renamed into place
when the run succeeds. A failure, Ctrl-C or crash leaves the previous artefact as it was and
no partial one under the destination name. A ``manifest.json`` marks a folder as ours: an
existing folder without it is refused unless ``force`` is set, so a typo in ``--out`` cannot
wipe unrelated files. A lock file beside the destination makes a second concurrent run into
the same folder fail at once instead of interleaving.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.errors import PipelineError, UsageError

MANIFEST = "manifest.json"
TOOL_NAME = "autovc-onnx-tf"


class AtomicOutputDir:
    """``with AtomicOutputDir(dest) as tmp:`` write into ``tmp``; on success it becomes ``dest``."""

    def __init__(self, destination: Path, *, force: bool = False) -> None:
        self.destination = Path(destination).absolute()
        self.force = force
        self.manifest: dict[str, Any] = {"tool": TOOL_NAME}
        self._lock_file: Any = None
        self._temp: Path | None = None

    def __enter__(self) -> Path:
        self._check_destination()
        parent = self.destination.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(parent / f".{self.destination.name}.lock", "w")
        except OSError as error:
            raise UsageError(f"cannot write to output folder {parent}: {error.strerror}") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise PipelineError(
                f"another run is writing to {self.destination} right now; try again when it has finished"
            ) from None
        self._temp = Path(tempfile.mkdtemp(prefix=f".{self.destination.name}.partial-", dir=parent))
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
        if dest.is_dir() and any(dest.iterdir()) and not is_ours(dest) and not self.force:
            raise UsageError(
                f"output folder {dest} exists and was not written by {TOOL_NAME} "
                f"(no {MANIFEST}); choose another --out or pass --force to replace it"
            )

    def _publish(self, temp: Path) -> None:
        self.manifest["files"] = sorted(
            str(p.relative_to(temp)) for p in temp.rglob("*") if p.is_file()
        )
        (temp / MANIFEST).write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
        old = None
        if self.destination.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.destination.name}.old-", dir=self.destination.parent))
            os.rename(self.destination, old / "previous")
        try:
            os.rename(temp, self.destination)
        except OSError as error:
            if old is not None:
                os.rename(old / "previous", self.destination)
            if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise UsageError(f"cannot write output folder {self.destination}: {error.strerror}") from None
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


def is_ours(folder: Path) -> bool:
    """True when ``folder`` holds a manifest this tool wrote."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("tool") == TOOL_NAME
