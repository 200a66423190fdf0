"""Export a fine-tuned adapter for llama.cpp (`python -m training export`).

    python -m training export --adapter DIR --base {gemma3-270m,smollm2-135m,PATH} --out DIR [--quant Q4_K_M]

Writes, into --out:
  adapter.gguf     the LoRA alone (convert_lora_to_gguf.py): small; `Llama(base, lora_path=...)` uses it
  merged/          the base with the adapter merged in (peft `merge_and_unload`), a plain HF folder
  model-f16.gguf   the merged model converted by convert_hf_to_gguf.py (deleted after quantising)
  model-<quant>.gguf  quantised with the binding's `llama_model_quantize`
Each GGUF is loaded by llama.cpp before the command reports success.

The converter scripts are llama.cpp's own and must match the llama.cpp inside the installed
llama-cpp-python. They ship only in its source package (not in the wheel, not in `gguf` on PyPI), and
they need their `conversion/` package and `gguf-py` too (~2 MB, ~100 files). So rather than vendor a
copy that drifts from the installed binding, the first export fetches the source package of exactly
the installed version (`pip download --no-deps --no-binary :all: llama-cpp-python==X`), extracts only
the converter files and llama.cpp's MIT license into the cache, and reuses them afterwards. Offline,
point DUALREC_LLAMA_CPP_SOURCE at that source package (.tar.gz) or at a llama.cpp checkout.
llama.cpp's own converter requirements file is never installed (it pins another torch).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
import tarfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from dualrec_tui.core.errors import DualrecError, ModelUnavailableError

from .llm_base import DEFAULT_BASE, KNOWN_BASES

QUANT_TYPES = ("Q4_K_M", "Q4_0", "Q5_K_M", "Q8_0", "F16", "F32")  # F16/F32: the converter's output as is
DEFAULT_QUANT = "Q4_K_M"
CONVERTER_FILES = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "LICENSE")
CONVERTER_DIRS = ("conversion", "gguf-py")
SOURCE_ENV = "DUALREC_LLAMA_CPP_SOURCE"


class ConverterMissingError(DualrecError):
    """llama.cpp's converter scripts are not available (and could not be fetched)."""


class ExportError(DualrecError):
    """A conversion step failed; the message names the step and the tool's last output lines."""


# ------------------------------------------------------------------------------------ converter
def binding_version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        raise ConverterMissingError(
            "llama-cpp-python is not installed, so there is no llama.cpp to export for.\n"
            "  fix: pip install --no-cache-dir llama-cpp-python  (see README: CMAKE_ARGS for your CPU/GPU)"
        ) from None


def _is_converter(folder: Path) -> bool:
    return all((folder / name).exists() for name in (*CONVERTER_FILES[:2], *CONVERTER_DIRS))


def _extract(sdist: Path, target: Path) -> Path:
    """Extract only the converter files (and llama.cpp's license) from a llama-cpp-python source package."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    wanted = (*CONVERTER_FILES, *(d + "/" for d in CONVERTER_DIRS))
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/vendor/llama.cpp/", 1)
            if len(parts) != 2 or not (member.isfile() and parts[1].startswith(wanted)):
                continue
            if parts[1].endswith(".py") or parts[1] in CONVERTER_FILES or "/" in parts[1]:
                destination = partial / parts[1]
                if ".." in Path(parts[1]).parts:
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(member) as source, destination.open("wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(source, out)
    if not _is_converter(partial):
        shutil.rmtree(partial, ignore_errors=True)
        raise ConverterMissingError(f"{sdist} does not contain llama.cpp's converter scripts under vendor/llama.cpp/")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def find_converter(download: bool = True) -> Path:
    """The folder holding convert_hf_to_gguf.py etc. for the installed llama-cpp-python (fetched once)."""
    from dualrec_tui.core.artifacts import cache_dir

    source = os.environ.get(SOURCE_ENV)
    if source and Path(source).is_dir():
        if not _is_converter(Path(source)):
            raise ConverterMissingError(f"{SOURCE_ENV}={source} is not a llama.cpp checkout (no convert_hf_to_gguf.py)")
        return Path(source)
    version = binding_version()
    target = cache_dir() / f"llama.cpp-converter-{version}"
    if _is_converter(target):
        return target
    if source:
        return _extract(Path(source), target)
    fix = (
        f"  fix: run one export while online (it fetches llama-cpp-python=={version}'s source package), or set\n"
        f"  {SOURCE_ENV} to that source package (.tar.gz) or to a llama.cpp checkout"
    )
    if not download:
        raise ConverterMissingError(f"llama.cpp's converter scripts are not in {target}.\n{fix}")
    download_dir = cache_dir() / "sdist"
    download_dir.mkdir(parents=True, exist_ok=True)
    print(f"fetching llama-cpp-python=={version} source package for its GGUF converter (once)...", file=sys.stderr)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(download_dir),
            f"llama-cpp-python=={version}",
        ],
        capture_output=True,
        text=True,
    )
    sdists = sorted(download_dir.glob(f"llama_cpp_python-{version}.tar.gz"))
    if result.returncode != 0 or not sdists:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise ConverterMissingError(f"could not download llama-cpp-python=={version}'s source package:\n{tail}\n{fix}")
    return _extract(sdists[0], target)


def _run_script(script: Path, args: list[str], step: str) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONIOENCODING="utf-8")
    env.pop("NO_LOCAL_GGUF", None)  # use the gguf-py that matches this converter, not PyPI's gguf
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise ExportError(f"{step} failed ({script.name} exited with {result.returncode}):\n{tail}")


def convert_hf_to_gguf(hf_dir: Path, out: Path, outtype: str = "f16") -> Path:
    """An HF model folder -> one GGUF file, with llama.cpp's own converter."""
    converter = find_converter()
    out.parent.mkdir(parents=True, exist_ok=True)
    _run_script(
        converter / "convert_hf_to_gguf.py",
        [str(hf_dir), "--outfile", str(out), "--outtype", outtype],
        "converting the merged model to GGUF",
    )
    return out


def convert_lora_to_gguf(adapter_dir: Path, base_hf_dir: Path, out: Path, outtype: str = "f32") -> Path:
    """A peft adapter folder -> a GGUF LoRA for `Llama(model_path=base, lora_path=out)`."""
    converter = find_converter()
    out.parent.mkdir(parents=True, exist_ok=True)
    _run_script(
        converter / "convert_lora_to_gguf.py",
        [str(adapter_dir), "--base", str(base_hf_dir), "--outfile", str(out), "--outtype", outtype],
        "converting the adapter to a GGUF LoRA",
    )
    return out


# ---------------------------------------------------------------------------------- merge, quant
def merge_adapter(base_hf_dir: Path, adapter_dir: Path, out: Path) -> Path:
    """Base + LoRA -> a plain HF folder with the adapter merged into the weights (float32)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise ModelUnavailableError(
            "LoRA adapter", f"no adapter_config.json in {adapter_dir}", "python -m training llm --out DIR"
        )
    model = AutoModelForCausalLM.from_pretrained(str(base_hf_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(base_hf_dir)).save_pretrained(out)
    # Keep the sentencepiece model: llama.cpp's converter reads the vocabulary from it when present.
    for name in ("tokenizer.model",):
        if (Path(base_hf_dir) / name).is_file():
            shutil.copyfile(Path(base_hf_dir) / name, out / name)
    return out


def quantize(source: Path, out: Path, quant: str = DEFAULT_QUANT, threads: int = 0) -> Path:
    """Quantise a GGUF with the binding's llama_model_quantize (no llama.cpp binaries needed)."""
    import llama_cpp

    quant = quant.upper()
    if quant not in QUANT_TYPES:
        raise DualrecError(f"unknown quantisation {quant!r}; choose one of {', '.join(QUANT_TYPES)}")
    ftype_name = "LLAMA_FTYPE_MOSTLY_F16" if quant == "F16" else f"LLAMA_FTYPE_MOSTLY_{quant}"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype_name)
    params.nthread = threads
    with _quiet_native():
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    if status != 0 or not out.is_file():
        raise ExportError(f"quantising {source} to {quant} failed (llama_model_quantize returned {status})")
    return out


class _quiet_native:
    """Silence native stderr (llama.cpp logs) for the duration of a block."""

    def __enter__(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)


def load_llama(
    model: Path,
    lora: Path | None = None,
    n_ctx: int = 1024,
    threads: int | None = None,
    logits_all: bool = False,
    f32_cache: bool = False,
) -> Any:
    """A quiet llama.cpp model on the CPU. `f32_cache`: float32 KV cache (default f16) for exact comparisons."""
    import llama_cpp
    from llama_cpp import Llama

    cache_type = {"type_k": llama_cpp.GGML_TYPE_F32, "type_v": llama_cpp.GGML_TYPE_F32} if f32_cache else {}

    with _quiet_native():
        return Llama(
            model_path=str(model),
            lora_path=str(lora) if lora else None,
            n_ctx=n_ctx,
            n_threads=threads or max(1, min(4, os.cpu_count() or 1)),
            n_gpu_layers=0,
            logits_all=logits_all,
            verbose=False,
            seed=0,
            **cache_type,
        )


def smoke_test_gguf(model: Path, lora: Path | None = None) -> dict[str, Any]:
    """Load a GGUF in llama.cpp and run one decode: proof the file is usable, with its size and load time.

    (core/llm.py's `check_gguf` only reads a file's header before the app loads it; this one runs it.)"""
    start = time.perf_counter()
    try:
        llama = load_llama(model, lora, n_ctx=256)
        loaded = time.perf_counter() - start
        with _quiet_native():
            llama.eval(llama.tokenize(b"A movie fan recently watched"))
    except Exception as exc:  # llama.cpp raises ValueError / RuntimeError with little detail
        what = f"{model}" + (f" with LoRA {lora}" if lora else "")
        raise ExportError(f"llama.cpp could not load {what}: {exc}") from exc
    size = model.stat().st_size + (lora.stat().st_size if lora else 0)
    return {"file": str(model), "lora": str(lora) if lora else None, "bytes": size, "load_seconds": round(loaded, 3)}


# ------------------------------------------------------------------------------------ evaluation
def adapter_task(adapter: Path) -> str:
    """The task an adapter was trained for ("candidates", "titles" or "rank"), from its training manifest.

    Manifests written before the candidates task existed have no `task`: those adapters write titles.
    Without a manifest the default task of `python -m training llm` ("titles") is assumed."""
    import json

    for folder in (adapter, adapter.parent):
        manifest = folder / "manifest.json"
        if manifest.is_file():
            return json.loads(manifest.read_text(encoding="utf-8")).get("data", {}).get("task", "titles")
    return "titles"


def evaluate_export(
    model: Path, task: str, data: Path, users: int, *, lstm: Path | None = None, seed: int = 0, console: Any = None
) -> dict[str, Any]:
    """The exported GGUF in the evaluation harness (training/evaluate.py) beside the LSTM, on `users` seeded users.

    The row is `llm-rank` (the LLM's order of the LSTM's candidates, as the app uses it), scored the way the
    adapter's task was trained for: title likelihood (titles) or the lettered list (candidates); `lstm` is
    the paired reference. The harness's JSON is written beside `model` (evaluation.json); a summary is
    returned."""
    from .evaluate import print_report, run_evaluation

    row = "llm-rank"
    checkpoints = {row: str(model)}
    if lstm is not None:
        checkpoints["lstm"] = str(lstm)
    json_path = model.parent / "evaluation.json"
    report = run_evaluation(
        data,
        ["lstm", row],
        users=users,
        seed=seed,
        checkpoints=checkpoints,
        console=console,
        json_path=json_path,
        work_dir=model.parent / "evaluation",
        paired_with=["lstm"],
        llm_scoring="letters" if task == "candidates" else "titles",
    )
    if console is not None:
        print_report(report, console)
    entry = report["models"][row]
    keep = ("NDCG@10", "HR@10", "HR@20", "MRR", "resolved_rate", "errors", "paired")
    return {"row": row, "users": report["n_users"], "seed": seed, "json": str(json_path)} | {
        key: entry[key] for key in keep if key in entry
    }


# ------------------------------------------------------------------------------------------- run
def export(
    adapter: Path,
    base: str,
    out: Path,
    quant: str = DEFAULT_QUANT,
    *,
    merged: bool = True,
    console: Any = None,
    evaluate_users: int = 0,
    data: Path | None = None,
    lstm: Path | None = None,
) -> dict[str, Any]:
    """Adapter -> adapter.gguf (+ merged/ -> model-f16.gguf -> model-<quant>.gguf), each smoke-tested in llama.cpp.

    With `evaluate_users` > 0 (and `data`), the exported model is also run through the evaluation harness
    on that many seeded users (`evaluate_export`). The report is written to out/export.json.
    """
    import json

    from dualrec_tui.core.llm_files import base_gguf_path

    from .gguf_metadata import adapter_metadata, rewrite_general_metadata
    from .llm_base import hf_base_dir, resolve_base

    say = console.print if console is not None else (lambda *a, **k: None)
    adapter = Path(adapter)
    if (adapter / "adapter" / "adapter_config.json").is_file():
        adapter = adapter / "adapter"  # the --out folder of `python -m training llm`
    base_path = resolve_base(base)
    if evaluate_users:
        if data is None:
            raise DualrecError("--evaluate-users needs --data (the MovieLens release to evaluate on)")
        if not merged and base_path != base_gguf_path():
            raise DualrecError(
                f"--evaluate-users with --adapter-only needs the {DEFAULT_BASE} base (the harness runs adapter.gguf "
                "on it); drop --adapter-only to evaluate the merged model"
            )
    base_hf = hf_base_dir(base)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"quant": quant}
    start = time.perf_counter()
    lora_gguf = convert_lora_to_gguf(adapter, base_hf, out / "adapter.gguf")
    # The converter names the base after its cache folder: write the real base model and the project instead.
    version = adapter.name if adapter.name.startswith("checkpoint-") else None
    rewrite_general_metadata(lora_gguf, adapter_metadata(base, version=version))
    say(f"adapter GGUF {lora_gguf} ({lora_gguf.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - start:.1f} s)")
    if base_path.suffix == ".gguf":
        report["adapter_check"] = smoke_test_gguf(base_path, lora_gguf)
    if merged:
        start = time.perf_counter()
        merged_dir = merge_adapter(base_hf, adapter, out / "merged")
        if quant.upper() in ("F16", "F32"):
            final = convert_hf_to_gguf(merged_dir, out / f"model-{quant.upper()}.gguf", quant.lower())
        else:
            f16 = convert_hf_to_gguf(merged_dir, out / "model-f16.gguf", "f16")
            final = quantize(f16, out / f"model-{quant.upper()}.gguf", quant)
            f16.unlink()
        shutil.rmtree(merged_dir)
        report["merged_check"] = smoke_test_gguf(final)
        say(f"merged GGUF {final} ({final.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s)")
    report["adapter_gguf"] = str(lora_gguf)
    if evaluate_users and data is not None:
        model = Path(report["merged_check"]["file"]) if merged else lora_gguf
        report["evaluation"] = evaluate_export(
            model, adapter_task(adapter), data, evaluate_users, lstm=lstm, console=console
        )
    (out / "export.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training export",
        description="Adapter -> adapter.gguf and merged model-<quant>.gguf, each loaded by llama.cpp and run on a "
        "few tokens to check it. With --evaluate-users N, the exported model is also scored by the evaluation "
        "harness (the `llm-rank` row, scored by title likelihood or by letters as the adapter's task was "
        "trained) beside the LSTM.",
    )
    parser.add_argument("--adapter", type=Path, required=True, help="adapter folder (or the --out of `training llm`)")
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"{', '.join(KNOWN_BASES)}, an HF folder or a .gguf")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quant", default=DEFAULT_QUANT, choices=QUANT_TYPES, help="quantisation of the merged GGUF")
    parser.add_argument("--adapter-only", action="store_true", help="only write adapter.gguf (skip the merged model)")
    parser.add_argument(
        "--evaluate-users",
        type=int,
        default=0,
        metavar="N",
        help="also evaluate the export on N seeded users with `python -m training evaluate`'s harness "
        "(writes OUT/evaluation.json)",
    )
    parser.add_argument("--data", type=Path, help="MovieLens release for --evaluate-users")
    parser.add_argument("--lstm", type=Path, help="LSTM folder for --evaluate-users (else the harness trains one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m training export ...`: convert, smoke-test, optionally evaluate; report in OUT/export.json."""
    from rich.console import Console

    args = build_parser().parse_args(argv)
    export(
        args.adapter,
        args.base,
        args.out,
        args.quant,
        merged=not args.adapter_only,
        console=Console(),
        evaluate_users=args.evaluate_users,
        data=args.data,
        lstm=args.lstm,
    )
    return 0
