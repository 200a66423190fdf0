"""Verify a GGUF before llama.cpp reads it.

Why: llama.cpp trusts a GGUF's header. A truncated or damaged file does not raise, it segfaults the
whole process (the app died with exit 139 at the first recommendation, every start). So before any
native code touches a file we check, in Python:

1. size and SHA-256 against the `manifest.json` in the same folder, when the manifest records them
   (`"verify": {"adapter.gguf": {"bytes": ..., "sha256": ...}}`, or the older `adapter_gguf_sha256`);
2. the structure, with a bounded walk over a memory map (type sizes from the `gguf` package): the
   header, every key/value and tensor record parse, and every tensor's data lies inside the file;
3. for an adapter, that it is a LoRA adapter for the base model's architecture.

The adapter's manifest also names the base model's SHA-256: a damaged or different base is refused.
Hashing a 250 MB base takes about a second, so a passed check is remembered in the cache folder
(`verified-gguf.json`) under the file's (path, size, mtime): an unchanged file is checked once.
Every failure is a `ModelUnavailableError` with a message a person can act on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ModelUnavailableError

CACHE_FILE = "verified-gguf.json"
CACHE_VERSION = 2
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class GgufInfo:
    """What a passed check learned about a file (kept in the cache)."""

    size: int
    mtime_ns: int
    sha256: str
    architecture: str
    kind: str  # "model" or "adapter" (general.type)
    tensors: tuple[str, ...]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def expected_digest(path: Path, what: str = "model files") -> tuple[str | None, int | None]:
    """(sha256, bytes) the folder's manifest records for `path`, or (None, None) when it records nothing.

    A manifest that exists but cannot be read is an error: it is the thing that vouches for the file."""
    manifest = Path(path).parent / MANIFEST
    if not manifest.is_file():
        return None, None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(what, f"unreadable manifest {manifest} ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelUnavailableError(what, f"manifest {manifest} is not a JSON object")
    entry = data.get("verify", {}).get(path.name) if isinstance(data.get("verify"), dict) else None
    if isinstance(entry, dict):
        sha, size = entry.get("sha256"), entry.get("bytes")
        return (str(sha).lower() if sha else None), (int(size) if isinstance(size, int) else None)
    legacy = data.get(f"{Path(path).stem}_gguf_sha256")  # e.g. "adapter_gguf_sha256"
    return (str(legacy).lower() if legacy else None), None


# ----------------------------------------------------------------------------- cache
def _cache_path() -> Path | None:
    try:
        from .artifacts import cache_dir

        return cache_dir() / CACHE_FILE
    except (OSError, ImportError):
        return None  # no writable cache: check every time, never fail because of the cache


def _read_cache() -> dict[str, Any]:
    path = _cache_path()
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _cached(path: Path, stat: os.stat_result) -> GgufInfo | None:
    entry = _read_cache().get(str(path))
    if not isinstance(entry, dict):
        return None
    try:
        info = GgufInfo(**{**entry, "tensors": tuple(entry["tensors"])})
    except (TypeError, KeyError):
        return None
    if info.size != stat.st_size or info.mtime_ns != stat.st_mtime_ns:
        return None
    return info


def _remember(path: Path, info: GgufInfo) -> None:
    """Best effort (atomic rename; a read-only cache only costs a re-check next time)."""
    cache = _cache_path()
    if cache is None:
        return
    files = _read_cache()
    files[str(path)] = asdict(info)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{cache.name}.", dir=cache.parent)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump({"version": CACHE_VERSION, "files": files}, stream)
        os.replace(temporary, cache)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


# ------------------------------------------------------------------------- structure
MAX_COUNT = 10_000_000  # tensors, keys or array items: more is a damaged count, not a model
GGML_MAX_DIMS = 4
_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUFValueType -> bytes
_STRING, _ARRAY = 8, 9


class _Cursor:
    """Bounds-checked little-endian reads over a memory map: a bad length raises, never reads past the end."""

    def __init__(self, data: Any, size: int) -> None:
        self.data, self.size, self.at = data, size, 0

    def take(self, count: int) -> int:
        if count < 0 or self.at + count > self.size:
            raise ValueError(f"it ends at byte {self.size:,} while a record needs byte {self.at + count:,} (truncated)")
        start = self.at
        self.at += count
        return start

    def u32(self) -> int:
        return int.from_bytes(self.data[self.take(4) : self.at], "little")

    def u64(self) -> int:
        return int.from_bytes(self.data[self.take(8) : self.at], "little")

    def count(self, what: str) -> int:
        value = self.u64()
        if value > MAX_COUNT:
            raise ValueError(f"it claims {value:,} {what} (a damaged count)")
        return value

    def text(self) -> str:
        length = self.u64()
        return bytes(self.data[self.take(length) : self.at]).decode("utf-8", errors="replace")

    def skip_value(self, kind: int, depth: int = 0) -> None:
        if kind in _SCALARS:
            self.take(_SCALARS[kind])
        elif kind == _STRING:
            self.take(self.u64())
        elif kind == _ARRAY and depth < 2:
            item, count = self.u32(), self.count("array items")
            if item in _SCALARS:
                self.take(_SCALARS[item] * count)
            else:
                for _ in range(count):
                    self.skip_value(item, depth + 1)
        else:
            raise ValueError(f"unknown value type {kind} at byte {self.at:,}")


def _structure(path: Path, size: int) -> tuple[str, str, tuple[str, ...]]:
    """(architecture, kind, tensor names) of a well-formed GGUF; ValueError says what is malformed.

    A bounded walk of the header, key/value table and tensor table (the `gguf` package's reader builds
    Python objects for every vocabulary entry: 25 s for the 250 MB base; this takes well under a second),
    then every tensor's data must lie inside the file. Type sizes come from the `gguf` package."""
    import mmap

    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        cursor = _Cursor(data, size)
        cursor.take(4)  # magic, checked by the caller
        version = cursor.u32()
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} is not 2 or 3")
        n_tensors, n_kv = cursor.count("tensors"), cursor.count("keys")
        texts: dict[str, str] = {}
        alignment = 32
        for _ in range(n_kv):
            key = cursor.text()
            kind = cursor.u32()
            if kind == _STRING and key in ("general.architecture", "general.type", "adapter.type"):
                texts[key] = cursor.text()
            elif kind == 4 and key == "general.alignment":
                alignment = cursor.u32()
            else:
                cursor.skip_value(kind)
        if alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"general.alignment {alignment} is not a power of two")
        tensors: list[tuple[str, int, int]] = []  # name, offset, bytes
        for _ in range(n_tensors):
            name = cursor.text()
            n_dims = cursor.u32()
            if not 1 <= n_dims <= GGML_MAX_DIMS:
                raise ValueError(f"tensor {name} has {n_dims} dimensions")
            elements = 1
            for _ in range(n_dims):
                elements *= cursor.count("elements in a dimension") or 1
            type_id, offset = cursor.u32(), cursor.u64()
            try:
                block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
            except (ValueError, KeyError):
                raise ValueError(f"tensor {name} has unknown type {type_id}") from None
            if elements % block:
                raise ValueError(f"tensor {name}: {elements} elements do not fill {block}-element blocks")
            tensors.append((name, offset, elements // block * type_size))
        data_start = -(-cursor.at // alignment) * alignment
    for name, offset, length in tensors:
        end = data_start + offset + length
        if end > size:
            raise ValueError(f"tensor {name} ends at byte {end:,} but the file has {size:,} bytes (truncated)")
    if not tensors:
        raise ValueError("it holds no tensors")
    architecture = texts.get("general.architecture", "")
    if not architecture:
        raise ValueError("it names no architecture (general.architecture)")
    kind = texts.get("general.type") or "model"
    if kind == "adapter" and texts.get("adapter.type", "lora") != "lora":
        raise ValueError(f"it is a {texts['adapter.type']} adapter, not a LoRA adapter")
    return architecture, kind, tuple(name for name, _, _ in tensors)


# ---------------------------------------------------------------------------- checks
def verify_gguf(path: Path, what: str, rebuild: str | None = None, expected_sha256: str | None = None) -> GgufInfo:
    """Size and SHA-256 against the folder's manifest (else `expected_sha256`, when given) and the structure.

    The hash and the structure are remembered per (path, size, mtime): an unchanged file is read once."""
    path = Path(path).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelUnavailableError(what, f"cannot read {path} ({exc})", rebuild) from exc
    manifest_sha, expected_size = expected_digest(path, what)
    expected = manifest_sha or (expected_sha256.lower() if expected_sha256 else None)
    damaged = f"{path} is damaged or incomplete"
    if expected_size is not None and stat.st_size != expected_size:
        raise ModelUnavailableError(
            what, f"{damaged}: {stat.st_size:,} bytes, its manifest says {expected_size:,}", rebuild
        )
    info = _cached(path, stat)
    if info is None:
        try:
            sha = file_sha256(path)
            architecture, kind, tensors = _structure(path, stat.st_size)
        except ValueError as exc:
            raise ModelUnavailableError(what, f"{damaged}: {exc}", rebuild) from exc
        except OSError as exc:
            raise ModelUnavailableError(what, f"cannot read {path} ({exc})", rebuild) from exc
        info = GgufInfo(stat.st_size, stat.st_mtime_ns, sha, architecture, kind, tensors)
        _remember(path, info)
    if expected is not None and info.sha256 != expected:
        source = "its manifest says" if manifest_sha else "the adapter was made for a base with"
        raise ModelUnavailableError(
            what, f"{damaged}: its SHA-256 is {info.sha256[:12]}…, {source} {expected[:12]}…", rebuild
        )
    return info


def verify_model(path: Path, what: str, rebuild: str | None = None, expected_sha256: str | None = None) -> GgufInfo:
    """A whole model (not an adapter), verified."""
    info = verify_gguf(path, what, rebuild, expected_sha256)
    if info.kind == "adapter":
        raise ModelUnavailableError(what, f"{path} is a LoRA adapter, not a model", rebuild)
    return info


def _base_sha256(adapter: Path) -> str | None:
    """The base model's SHA-256 that the adapter's manifest records (`runtime.base_gguf_sha256`)."""
    manifest = Path(adapter).parent / MANIFEST
    try:
        data = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
    except (OSError, ValueError):
        return None  # verify_gguf has already refused an unreadable manifest
    runtime = data.get("runtime") if isinstance(data, dict) else None
    sha = runtime.get("base_gguf_sha256") if isinstance(runtime, dict) else None
    return str(sha).lower() if sha else None


def verify_adapter(adapter: Path, base: Path, what: str, rebuild: str | None = None) -> GgufInfo:
    """A LoRA adapter, verified, that fits `base`: same architecture, and every tensor it adapts exists there."""
    info = verify_gguf(adapter, what, rebuild)
    if info.kind != "adapter":
        raise ModelUnavailableError(what, f"{adapter} is not a LoRA adapter (general.type = {info.kind!r})", rebuild)
    model = verify_model(base, what, rebuild, _base_sha256(adapter))
    if info.architecture != model.architecture:
        raise ModelUnavailableError(
            what,
            f"{adapter} is for the {info.architecture!r} architecture but the base model {base} is "
            f"{model.architecture!r}",
            rebuild,
        )
    known = set(model.tensors)
    for name in info.tensors:
        target = name.removesuffix(".lora_a").removesuffix(".lora_b")
        if target != name and target not in known:
            raise ModelUnavailableError(
                what, f"{adapter} adapts tensor {target}, which the base model {base} does not have", rebuild
            )
    return info
