"""Reading named text files out of a zip archive, safely (a corrupt, huge or hostile zip is a
`DataFormatError`, never a crash or a memory blow-up). Which files and folders matter is the caller's.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Collection
from pathlib import PurePosixPath

from dualrec_tui.core.errors import DataFormatError

from .reading import MAX_FILE_BYTES, read_text

# Everything zipfile raises on a corrupt archive (found by fuzzing: zlib.error, NotImplementedError
# for a garbled version field, RuntimeError for "encrypted", struct.error for short headers).
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,
    RuntimeError,
    OSError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
)


def zip_texts(data: bytes, display: str, wanted: Collection[str], skip: Collection[str]) -> dict[str, tuple[str, str]]:
    """{file name: (shown as 'export.zip!member', text)} for each `wanted` name in the zip, the shallowest
    copy of each, leaving out members under a folder named in `skip` (e.g. Letterboxd's deleted/)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except ZIP_ERRORS as exc:
        raise DataFormatError(display, None, f"not a valid zip file ({exc})") from exc
    chosen: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        pure = PurePosixPath(info.filename.replace("\\", "/"))
        if not info.filename or info.filename.endswith("/") or pure.name not in wanted:
            continue
        if any(part in skip for part in pure.parts[:-1]):
            continue
        best = chosen.get(pure.name)
        if best is None or len(PurePosixPath(best.filename).parts) > len(pure.parts):
            chosen[pure.name] = info
    files: dict[str, tuple[str, str]] = {}
    for name, info in chosen.items():
        member = f"{display}!{info.filename}"
        if info.file_size > MAX_FILE_BYTES:
            raise DataFormatError(member, None, f"{info.file_size} bytes uncompressed, too large for an export")
        try:
            with archive.open(info) as handle:
                content = handle.read(MAX_FILE_BYTES + 1)
        except ZIP_ERRORS as exc:
            raise DataFormatError(member, None, f"cannot read this zip member ({exc})") from exc
        if len(content) > MAX_FILE_BYTES:
            raise DataFormatError(member, None, "too large for an export")
        files[name] = (member, read_text(content, member))
    return files
