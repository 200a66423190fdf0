"""Write a Mistral-7B-shaped GGUF (llama architecture, f16) with random weights, for speed benchmarks.

Why random weights: generation speed depends on the tensor shapes and quantisation type, not on the
values, and real 7B weights (14 GB) cannot travel to the GPU machine. One random block per tensor
shape is reused across layers, so writing 14.5 GB costs little more than the disk write.

The tokenizer is a minimal but valid llama/SentencePiece vocabulary (special tokens, the 256 byte
tokens, then ASCII pieces with decreasing scores), enough for llama.cpp to load the file, tokenize
text and detokenize output.

usage: python make_model.py OUT.gguf                      # Mistral 7B shape (default)
       python make_model.py OUT.gguf --n-layer 2 --n-embd 256 --n-head 8 --n-head-kv 2 --n-ff 512
"""

from __future__ import annotations

import argparse
import itertools
import json
import string
import time
from pathlib import Path

import numpy as np

BOS_ID, EOS_ID, UNK_ID = 1, 2, 0
# gguf token types (llama.cpp's llama_token_type): 1 normal, 2 unknown, 3 control, 6 byte.
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)


def spm_vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """A llama-style SPM vocabulary of exactly n_vocab distinct pieces (ids 0..2 special, 3..258 bytes)."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [UNKNOWN, CONTROL, CONTROL] + [BYTE] * 256
    alphabet = string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation
    seen = set(tokens)

    def pieces():
        yield "\u2581"  # SentencePiece's word-boundary marker
        for ch in alphabet:
            yield ch
            yield "\u2581" + ch
        for length in itertools.count(2):
            for combo in itertools.product(string.ascii_lowercase, repeat=length):
                word = "".join(combo)
                yield "\u2581" + word
                yield word

    for piece in pieces():
        if len(tokens) >= n_vocab:
            break
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(NORMAL)
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens[:n_vocab], scores[:n_vocab], types[:n_vocab]


def write_model(
    out: Path,
    *,
    n_layer: int = 32,
    n_embd: int = 4096,
    n_head: int = 32,
    n_head_kv: int = 8,
    n_ff: int = 14336,
    n_vocab: int = 32000,
    n_ctx: int = 4096,
    rope_theta: float = 1e6,
    seed: int = 0,
) -> dict[str, float]:
    """Write the GGUF; returns the parameter count and the seconds it took."""
    import gguf

    start = time.perf_counter()
    head_dim = n_embd // n_head
    rng = np.random.default_rng(seed)
    blocks: dict[tuple[int, int], np.ndarray] = {}

    def weight(rows: int, cols: int) -> np.ndarray:
        """A (rows=out, cols=in) f16 matrix; one random block per shape, shared by every layer."""
        key = (rows, cols)
        if key not in blocks:
            blocks[key] = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)
        return blocks[key]

    norm = np.ones(n_embd, dtype=np.float32)
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name("random-mistral-shape")
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(rope_theta)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    tokens, scores, types = spm_vocab(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_unk_token_id(UNK_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    params = 0

    def add(name: str, array: np.ndarray) -> None:
        nonlocal params
        params += array.size
        writer.add_tensor(name, array)

    # numpy shapes are (out, in); GGUF stores them reversed, as llama.cpp expects ([in, out]).
    add("token_embd.weight", weight(n_vocab, n_embd))  # [n_vocab, n_embd]
    for i in range(n_layer):
        add(f"blk.{i}.attn_norm.weight", norm)  # [n_embd]
        add(f"blk.{i}.attn_q.weight", weight(n_head * head_dim, n_embd))  # [n_embd -> n_embd]
        add(f"blk.{i}.attn_k.weight", weight(n_head_kv * head_dim, n_embd))  # [n_embd -> n_kv*head_dim]
        add(f"blk.{i}.attn_v.weight", weight(n_head_kv * head_dim, n_embd))
        add(f"blk.{i}.attn_output.weight", weight(n_embd, n_head * head_dim))
        add(f"blk.{i}.ffn_norm.weight", norm)
        add(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))  # [n_embd -> n_ff]
        add(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        add(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))  # [n_ff -> n_embd]
    add("output_norm.weight", norm)
    # A separate random block for the output head, so its logits are not the embedding's transpose.
    add("output.weight", (rng.standard_normal((n_vocab, n_embd), dtype=np.float32) * 0.02).astype(np.float16))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()
    return {"params": float(params), "seconds": time.perf_counter() - start, "bytes": float(out.stat().st_size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--n-layer", type=int, default=32)
    parser.add_argument("--n-embd", type=int, default=4096)
    parser.add_argument("--n-head", type=int, default=32)
    parser.add_argument("--n-head-kv", type=int, default=8)
    parser.add_argument("--n-ff", type=int, default=14336)
    parser.add_argument("--n-vocab", type=int, default=32000)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--rope-theta", type=float, default=1e6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    info = write_model(
        args.out,
        n_layer=args.n_layer,
        n_embd=args.n_embd,
        n_head=args.n_head,
        n_head_kv=args.n_head_kv,
        n_ff=args.n_ff,
        n_vocab=args.n_vocab,
        n_ctx=args.n_ctx,
        rope_theta=args.rope_theta,
        seed=args.seed,
    )
    shape = {k: v for k, v in vars(args).items() if k != "out"}
    Path(f"{args.out}.json").write_text(json.dumps({**shape, **info}, indent=2))
    print(
        f"wrote {args.out}: {info['params'] / 1e9:.3f} B params, {info['bytes'] / 2**30:.2f} GiB "
        f"in {info['seconds']:.1f} s"
    )


if __name__ == "__main__":
    main()
