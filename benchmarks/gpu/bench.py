"""llama.cpp generation speed through llama-cpp-python: quantise a GGUF, then time prompt and generation.

Subcommands (each reads and updates one results JSON, so a run cut short by a time limit can resume):

  quantize SRC.gguf --types Q4_K_M,Q4_0 --out-dir DIR --results R.json
      llama_model_quantize from SRC (f16) to each type, timed (all cores, llama.cpp's default).
  speed --model Q4_K_M=PATH --model Q4_0=PATH --flash-attn on,off --results R.json
      For each (quant, flash attention): load with all layers offloaded (n_gpu_layers=-1), then `reps` times:
      * generate: `Llama.generate` (the binding's own loop, greedy) on a fresh random `n_prompt`-token prompt;
        prompt tok/s = n_prompt / time to the first token; generation tok/s = (n_gen - 1) / time of the
        remaining tokens. `generate` does not stop at EOS, so every run makes exactly n_gen tokens.
      * decode: after the same prompt, n_gen single-token `llama_decode` + `llama_synchronize` calls with
        no sampling (what llama.cpp's own `llama-bench` tg test does), for the binding's overhead.
  serving --model PATH --results R.json
      dualrec's `LlamaGenerator.generate` (create_completion, streaming) on a DUALRec-style prompt,
      without and with the answer grammar.
  report R.json
      Markdown tables of the results (stdout).

Random weights are fine: speed depends on shapes and quantisation type only. `--deadline` (unix time)
makes a subcommand skip work it cannot finish in time, recording that it skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

FTYPES = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}


# --------------------------------------------------------------------------- results file
def load_results(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text())
    return {}


def save_results(path: Path, results: dict[str, Any], mirror: Path | None = None) -> None:
    """Write atomically; also copy to `mirror` (e.g. $OUT) so partial results survive a kill."""
    text = json.dumps(results, indent=2, sort_keys=True)
    for target in [path, mirror] if mirror else [path]:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)


def time_left(deadline: float | None) -> float:
    return float("inf") if deadline is None else deadline - time.time()


# --------------------------------------------------------------------------- quantise
def quantize(src: Path, out: Path, type_name: str) -> dict[str, Any]:
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[type_name]
    params.nthread = 0  # llama.cpp: <= 0 means std::thread::hardware_concurrency()
    start = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params))
    seconds = time.perf_counter() - start
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src} -> {type_name}) returned {rc}")
    return {"seconds": round(seconds, 2), "bytes": out.stat().st_size, "threads": os.cpu_count(), "path": str(out)}


def cmd_quantize(args: argparse.Namespace) -> None:
    results = load_results(args.results)
    done = results.setdefault("quantize", {})
    for type_name in args.types.split(","):
        out = args.out_dir / f"model-{type_name}.gguf"
        if type_name in done and out.is_file():
            print(f"quantize {type_name}: already done ({done[type_name]['seconds']} s)")
            continue
        if time_left(args.deadline) < args.min_seconds:
            print(f"quantize {type_name}: skipped, {time_left(args.deadline):.0f} s left")
            continue
        done[type_name] = {"source": str(args.src), **quantize(args.src, out, type_name)}
        print(f"quantize {type_name}: {done[type_name]['seconds']} s, {done[type_name]['bytes'] / 2**30:.2f} GiB")
        save_results(args.results, results, args.mirror)


# --------------------------------------------------------------------------- speed
def random_prompt(n_vocab: int, n: int, seed: int) -> list[int]:
    """Random ordinary token ids (above the 3 special + 256 byte tokens), one fresh prompt per repetition."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [1, *rng.integers(259, n_vocab, size=n - 1).tolist()]


def time_generate(llm: Any, prompt: list[int], n_gen: int) -> tuple[float, float]:
    """(prompt tok/s, generation tok/s) through Llama.generate, greedy."""
    llm.reset()
    start = time.perf_counter()
    first = start
    for i, _token in enumerate(llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True)):
        if i == 0:
            first = time.perf_counter()
        if i + 1 >= n_gen:
            break
    end = time.perf_counter()
    return len(prompt) / (first - start), (n_gen - 1) / (end - first)


def time_decode(llm: Any, prompt: list[int], n_gen: int) -> float:
    """Generation tok/s of bare llama_decode calls (no sampling, no Python generator), after the prompt."""
    import llama_cpp

    llm.reset()
    llm.eval(prompt)
    ctx = llm.ctx
    llama_cpp.llama_synchronize(ctx)
    token = (llama_cpp.llama_token * 1)(prompt[-1])
    start = time.perf_counter()
    for _ in range(n_gen):
        if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(token, 1)) != 0:
            raise RuntimeError("llama_decode failed")
        llama_cpp.llama_synchronize(ctx)
    return n_gen / (time.perf_counter() - start)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def speed_one(path: Path, quant: str, flash_attn: bool, args: argparse.Namespace) -> dict[str, Any]:
    import llama_cpp

    start = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_gpu_layers=args.n_gpu_layers,
        n_ctx=args.n_ctx,
        n_batch=args.n_batch,
        n_ubatch=args.n_batch,
        flash_attn=flash_attn,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        seed=0,
        verbose=args.verbose,
    )
    load_seconds = time.perf_counter() - start
    n_vocab = llm.n_vocab()
    time_generate(llm, random_prompt(n_vocab, min(64, args.n_prompt), 999), min(8, args.n_gen))  # warm-up
    prompt_tps, gen_tps, decode_tps = [], [], []
    for rep in range(args.reps):
        p, g = time_generate(llm, random_prompt(n_vocab, args.n_prompt, rep), args.n_gen)
        prompt_tps.append(p)
        gen_tps.append(g)
        decode_tps.append(time_decode(llm, random_prompt(n_vocab, args.n_prompt, 100 + rep), args.n_gen))
    llm.close()
    return {
        "quant": quant,
        "flash_attn": flash_attn,
        "model": str(path),
        "model_bytes": path.stat().st_size,
        "n_prompt": args.n_prompt,
        "n_gen": args.n_gen,
        "reps": args.reps,
        "n_ctx": args.n_ctx,
        "n_batch": args.n_batch,
        "n_gpu_layers": args.n_gpu_layers,
        "threads": args.threads,
        "load_seconds": round(load_seconds, 2),
        "prompt_tps": [round(v, 1) for v in prompt_tps],
        "gen_tps": [round(v, 1) for v in gen_tps],
        "decode_tps": [round(v, 1) for v in decode_tps],
        "prompt_tps_median": median(prompt_tps),
        "gen_tps_median": median(gen_tps),
        "decode_tps_median": median(decode_tps),
    }


def parse_models(items: list[str]) -> list[tuple[str, Path]]:
    models = []
    for item in items:
        name, _, path = item.partition("=")
        models.append((name, Path(path)))
    return models


def cmd_speed(args: argparse.Namespace) -> None:
    results = load_results(args.results)
    runs: list[dict[str, Any]] = results.setdefault("speed", [])
    flags = [{"on": True, "off": False}[f] for f in args.flash_attn.split(",")]
    for quant, path in parse_models(args.model):
        for fa in flags:
            if any(r["quant"] == quant and r["flash_attn"] == fa and "gen_tps_median" in r for r in runs):
                print(f"speed {quant} fa={fa}: already done")
                continue
            if not path.is_file():
                print(f"speed {quant} fa={fa}: no model at {path}, skipped")
                continue
            if time_left(args.deadline) < args.min_seconds:
                print(f"speed {quant} fa={fa}: skipped, {time_left(args.deadline):.0f} s left")
                continue
            row = speed_one(path, quant, fa, args)
            runs[:] = [r for r in runs if not (r["quant"] == quant and r["flash_attn"] == fa)] + [row]
            print(
                f"speed {quant} fa={'on' if fa else 'off'}: prompt {row['prompt_tps_median']} tok/s, "
                f"generate {row['gen_tps_median']} tok/s, bare decode {row['decode_tps_median']} tok/s "
                f"(load {row['load_seconds']} s)"
            )
            save_results(args.results, results, args.mirror)


# --------------------------------------------------------------------------- serving path
def dualrec_prompt() -> str:
    from dualrec_tui.core.catalog import Movie
    from dualrec_tui.core.prompt import build_prompt

    recent = [
        Movie(0, 1, "Toy Story", 1995, ("Animation", "Children's", "Comedy")),
        Movie(1, 2, "Heat", 1995, ("Action", "Crime", "Thriller")),
        Movie(2, 3, "Fargo", 1996, ("Crime", "Drama", "Thriller")),
        Movie(3, 4, "Twelve Monkeys", 1995, ("Drama", "Sci-Fi")),
        Movie(4, 5, "Star Wars", 1977, ("Action", "Adventure", "Romance", "Sci-Fi", "War")),
    ]
    predicted = Movie(5, 6, "Return of the Jedi", 1983, ("Action", "Adventure", "Romance", "Sci-Fi", "War"))
    return build_prompt(recent, predicted, 3)


def cmd_serving(args: argparse.Namespace) -> None:
    results = load_results(args.results)
    rows: list[dict[str, Any]] = results.setdefault("serving", [])
    if time_left(args.deadline) < args.min_seconds:
        print(f"serving: skipped, {time_left(args.deadline):.0f} s left")
        return
    from dualrec_tui.core.llm import LlamaGenerator
    from dualrec_tui.core.prompt import answer_grammar

    prompt = dualrec_prompt()
    start = time.perf_counter()
    gen = LlamaGenerator(args.model, n_gpu_layers=args.n_gpu_layers)
    load_seconds = time.perf_counter() - start
    flash = gen.llama.context_params.flash_attn_type
    for grammar_name, grammar in [("none", None), ("answer_grammar(3)", answer_grammar(3))]:
        gen.generate(prompt, max_tokens=8, grammar=grammar)  # warm-up (and grammar parse/cache)
        tps, chunks_all, seconds_all, first_all = [], [], [], []
        for rep in range(args.reps):
            chunks = [0]
            gen.llama.reset()  # no prompt-cache hit: every repetition evaluates the whole prompt, as a new user would

            def count(_text: str, chunks: list[int] = chunks) -> None:
                chunks[0] += 1

            gen.generate(prompt, max_tokens=args.n_gen, grammar=grammar, seed=rep, on_token=count)
            stats = gen.last
            decode_seconds = stats.seconds - stats.first_token_seconds
            tps.append((chunks[0] - 1) / decode_seconds if chunks[0] > 1 and decode_seconds > 0 else 0.0)
            chunks_all.append(chunks[0])
            seconds_all.append(round(stats.seconds, 3))
            first_all.append(round(stats.first_token_seconds, 4))
        rows[:] = [r for r in rows if r.get("grammar") != grammar_name or r.get("model") != str(args.model)]
        rows.append(
            {
                "model": str(args.model),
                "quant": args.quant,
                "grammar": grammar_name,
                "flash_attn_type": int(flash),
                "n_threads": gen.n_threads,
                "load_seconds": round(load_seconds, 2),
                "prompt_tokens": gen.last.prompt_tokens,
                "max_tokens": args.n_gen,
                "streamed_chunks": chunks_all,
                "seconds": seconds_all,
                "first_token_seconds": first_all,
                "gen_tps": [round(v, 1) for v in tps],
                "gen_tps_median": median(tps),
            }
        )
        print(f"serving {args.quant} grammar={grammar_name}: {median(tps)} tok/s, chunks {chunks_all}")
        save_results(args.results, results, args.mirror)
    gen.close()


# --------------------------------------------------------------------------- report
def report(results: dict[str, Any]) -> str:
    lines = []
    env = results.get("environment", {})
    if env:
        lines += ["## Environment", ""] + [f"- {k}: {v}" for k, v in sorted(env.items())] + [""]
    if "model" in results:
        lines += ["## Model", ""] + [f"- {k}: {json.dumps(v, sort_keys=True)}" for k, v in results["model"].items()]
        lines.append("")
    if results.get("quantize"):
        lines += ["## Quantisation (llama_model_quantize, from f16)", "", "| type | seconds | GiB | threads |"]
        lines += ["| --- | --- | --- | --- |"]
        for name, q in results["quantize"].items():
            lines.append(f"| {name} | {q['seconds']} | {q['bytes'] / 2**30:.2f} | {q['threads']} |")
        lines.append("")
    if results.get("speed"):
        first = results["speed"][0]
        lines += [
            f"## Speed ({env.get('backend', '?')} build, n_gpu_layers={first['n_gpu_layers']}, "
            f"{first['n_prompt']}-token prompt, {first['n_gen']} generated tokens, median of {first['reps']})",
            "",
            "| quant | flash attention | prompt tok/s | generation tok/s (`Llama.generate`) "
            "| generation tok/s (bare `llama_decode`) | runs (generate) | load s |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["speed"]:
            lines.append(
                f"| {r['quant']} | {'on' if r['flash_attn'] else 'off'} | {r['prompt_tps_median']} | "
                f"{r['gen_tps_median']} | {r['decode_tps_median']} | {', '.join(map(str, r['gen_tps']))} | "
                f"{r['load_seconds']} |"
            )
        lines.append("")
    if results.get("serving"):
        lines += [
            "## dualrec serving path (`LlamaGenerator.generate`, streaming, greedy)",
            "",
            "| quant | grammar | flash_attn_type | prompt tokens | streamed chunks | first token s | generation tok/s "
            "| runs |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["serving"]:
            lines.append(
                f"| {r['quant']} | {r['grammar']} | {r['flash_attn_type']} | {r['prompt_tokens']} | "
                f"{', '.join(map(str, r['streamed_chunks']))} | {', '.join(map(str, r['first_token_seconds']))} | "
                f"{r['gen_tps_median']} | "
                f"{', '.join(map(str, r['gen_tps']))} |"
            )
        lines.append("")
    for key in ("errors", "skipped"):
        if results.get(key):
            lines += [f"## {key}", ""] + [f"- {e}" for e in results[key]] + [""]
    return "\n".join(lines)


def cmd_record(args: argparse.Namespace) -> None:
    """Store facts about the run (device, build time, model shape) under `section` in the results."""
    results = load_results(args.results)
    section = results.setdefault(args.section, {} if args.section not in ("errors", "skipped") else [])
    for item in args.items:
        if isinstance(section, list):
            section.append(item)
            continue
        key, _, value = item.partition("=")
        if value.endswith(".json") and Path(value).is_file():
            section[key] = json.loads(Path(value).read_text())
        else:
            section[key] = value
    save_results(args.results, results, args.mirror)


def cmd_report(args: argparse.Namespace) -> None:
    sys.stdout.write(report(load_results(args.results)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--results", type=Path, required=True)
        p.add_argument("--mirror", type=Path, help="also write the results JSON here (e.g. $OUT/results.json)")
        p.add_argument("--deadline", type=float, help="unix time after which no new step starts")
        p.add_argument("--min-seconds", type=float, default=30.0, help="time a step needs before the deadline")

    q = sub.add_parser("quantize")
    q.add_argument("src", type=Path)
    q.add_argument("--types", default="Q4_K_M,Q4_0")
    q.add_argument("--out-dir", type=Path, required=True)
    common(q)
    q.set_defaults(func=cmd_quantize)

    def run_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--n-prompt", type=int, default=512)
        p.add_argument("--n-gen", type=int, default=128)
        p.add_argument("--reps", type=int, default=3)
        p.add_argument("--n-ctx", type=int, default=1024)
        p.add_argument("--n-batch", type=int, default=512)
        p.add_argument("--n-gpu-layers", type=int, default=-1)
        p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
        p.add_argument("--verbose", action="store_true")

    s = sub.add_parser("speed")
    s.add_argument("--model", action="append", required=True, help="QUANT=PATH, repeatable")
    s.add_argument("--flash-attn", default="on,off")
    run_opts(s)
    common(s)
    s.set_defaults(func=cmd_speed)

    v = sub.add_parser("serving")
    v.add_argument("--model", type=Path, required=True)
    v.add_argument("--quant", default="Q4_K_M")
    run_opts(v)
    common(v)
    v.set_defaults(func=cmd_serving)

    e = sub.add_parser("record")
    e.add_argument("section", help="environment | model | errors | skipped ...")
    e.add_argument("items", nargs="+", help="KEY=VALUE (VALUE may be a .json file), or plain text for lists")
    common(e)
    e.set_defaults(func=cmd_record)

    r = sub.add_parser("report")
    r.add_argument("results", type=Path)
    r.set_defaults(func=cmd_report)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
