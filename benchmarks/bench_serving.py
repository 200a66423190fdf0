"""Generation speed of our LlamaGenerator against bare llama-cpp-python, same model, same prompt, same process.

    python benchmarks/bench_serving.py [--gguf PATH] [--threads 2] [--tokens 64] [--repeats 5] [--grammar]

Both sides use the *same* `Llama` object, greedy decoding, and a reset KV cache before every run (so each
run pays the prompt too). Bare = `Llama.create_completion(prompt, ...)` without streaming; ours =
`LlamaGenerator.generate(...)` (lock, streaming, on_token callback, stop marker). Runs alternate
(bare, ours, bare, ours, ...) so a machine-load drift hits both. Tokens = the bare call's
`usage.completion_tokens` (the texts are checked to be identical). Target: overhead < 10%.
With --grammar both decode under `answer_grammar(3)`: bare llama-cpp-python applies the grammar to the
whole vocabulary at every step, ours checks the best tokens first (same tokens, see
tests/test_llm_serving.py), so there "overhead" is negative: it is the saving.
Both wall time and process CPU time are reported: on a shared, oversubscribed machine the CPU time
is the steadier measure of the work each side does.
Default model: the fine-tuned GGUF if built, else the Gemma 3 270M base GGUF.
"""

from __future__ import annotations

import argparse
import statistics
import time

from dualrec_tui.core.llm import LlamaGenerator
from dualrec_tui.core.llm_files import default_gguf_path
from dualrec_tui.core.prompt import answer_grammar, build_prompt


def sample_prompt() -> str:
    from dualrec_tui.core.catalog import Movie

    recent = [
        Movie(0, 1, "Toy Story", 1995, ("Adventure", "Animation", "Children", "Comedy", "Fantasy")),
        Movie(1, 2, "Heat", 1995, ("Action", "Crime", "Thriller")),
        Movie(2, 3, "The Matrix", 1999, ("Action", "Sci-Fi", "Thriller")),
        Movie(3, 4, "Fargo", 1996, ("Comedy", "Crime", "Drama", "Thriller")),
        Movie(4, 5, "Alien", 1979, ("Horror", "Sci-Fi")),
    ]
    predicted = Movie(5, 6, "Blade Runner", 1982, ("Action", "Sci-Fi", "Thriller"))
    return build_prompt(recent, predicted, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", help="model file (default: fine-tuned if built, else Gemma 3 270M base)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--grammar", action="store_true", help="both sides decode under answer_grammar(3)")
    args = parser.parse_args()

    path = args.gguf or default_gguf_path()
    start = time.perf_counter()
    generator = LlamaGenerator(path, n_threads=args.threads)
    load = time.perf_counter() - start
    llm = generator.llama
    prompt = sample_prompt()
    grammar_text = answer_grammar(3) if args.grammar else None
    grammar = generator._grammar(grammar_text) if grammar_text else None
    # The bare call gets no stop marker when unconstrained so that both produce exactly --tokens tokens.
    stop = ["<end>"] if args.grammar else []

    def bare() -> tuple[float, float, str, int]:
        llm.reset()
        t, c = time.perf_counter(), time.process_time()
        out = llm.create_completion(prompt, max_tokens=args.tokens, temperature=0.0, seed=0, stop=stop, grammar=grammar)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        return wall, cpu, out["choices"][0]["text"], out["usage"]["completion_tokens"]

    pieces: list[str] = []

    def ours() -> tuple[float, float, str]:
        llm.reset()
        pieces.clear()
        t, c = time.perf_counter(), time.process_time()
        text = generator.generate(
            prompt, max_tokens=args.tokens, grammar=grammar_text, temperature=0.0, seed=0, on_token=pieces.append
        )
        return time.perf_counter() - t, time.process_time() - c, text

    bare()  # warm-up (page in weights, build threads)
    ours()
    bare_times, our_times, bare_cpu, our_cpu = [], [], [], []
    tokens = 0
    for _ in range(args.repeats):
        seconds, cpu, bare_text, tokens = bare()
        bare_times.append(seconds)
        bare_cpu.append(cpu)
        seconds, cpu, our_text = ours()
        our_times.append(seconds)
        our_cpu.append(cpu)
        if "<end>" not in bare_text and our_text != bare_text.split("<end>")[0]:
            raise SystemExit(f"outputs differ:\n--- bare\n{bare_text!r}\n--- ours\n{our_text!r}")
    bare_s, our_s = statistics.median(bare_times), statistics.median(our_times)
    print(f"model: {path} (load {load:.2f} s), threads {args.threads}, grammar {'on' if args.grammar else 'off'}")
    print(f"prompt tokens {generator.count_tokens(prompt)}, completion tokens {tokens}, repeats {args.repeats}")
    print(f"bare llama-cpp-python : {bare_s:.3f} s median  ({tokens / bare_s:.1f} tok/s incl. prompt)")
    print(f"LlamaGenerator        : {our_s:.3f} s median  ({tokens / our_s:.1f} tok/s incl. prompt)")
    print(f"overhead (wall)       : {100 * (our_s / bare_s - 1):+.1f}%  (target < 10%)")
    bare_c, our_c = statistics.median(bare_cpu), statistics.median(our_cpu)
    print(
        f"CPU time median       : bare {bare_c:.3f} s, ours {our_c:.3f} s, overhead {100 * (our_c / bare_c - 1):+.1f}%"
    )
    generator.close()


if __name__ == "__main__":
    main()
