"""Tempo's compressor and ATA in a plain transformers + PyTorch training loop of another family.

No ``TempoModel``, no Lightning: a Llama-family causal LM from ``transformers`` is the decoder,
``tempo_kit.compressors`` turns each video segment into memory tokens with a relevance score,
``tempo_kit.allocators`` spends a token budget over the segments by relevance and keeps that many
tokens per segment, and a linear projection of yours maps them into the LLM's input embeddings,
each segment after its time tag written as text. The loop trains the memory tokens and the
projection (both models frozen) on one synthetic clip and question. Run as-is it writes a tiny
random Qwen3-VL and a tiny random Llama 3 (``tempo-kit make-tiny --llm llama``); with real ones:

    python examples/other_backbone_loop.py --svlm checkpoints/Qwen3-VL-2B-Instruct \\
        --llm checkpoints/Llama-3.2-3B-Instruct --k-max 32 --budget 256 --steps 50
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from tempo_kit.allocators import ATAAllocator, reduce_tokens
from tempo_kit.compressors import Qwen3VLCompressor
from tempo_kit.video import make_segments

PLACEHOLDER = "<video>"


def tiny_pair(svlm: str | None, llm: str | None) -> tuple[str, str]:
    """The checkpoints given, or tiny random ones written now (a Llama 3 decoder)."""
    from tempo_kit.tiny import make_tiny
    from tempo_kit.tiny.llm_families import LLM_WRITERS

    folder = tempfile.mkdtemp(prefix="tempo-tiny-")
    if not svlm:
        tiny = make_tiny(folder, llm="llama")
        return str(tiny["svlm"]), llm or str(tiny["llm"])
    return svlm, llm or str(LLM_WRITERS["llama"](f"{folder}/llm"))


def clip(seconds: int = 16, fps: float = 2.0, size: int = 64) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]``: grey frames with a red square in the second half."""
    frames = torch.full((int(seconds * fps), size, size, 3), 128, dtype=torch.uint8)
    frames[len(frames) // 2 :, 16:48, 16:48] = torch.tensor([220, 30, 30], dtype=torch.uint8)
    return frames


def prompt_pieces(tokenizer, question: str, answer: str) -> tuple[str, str, str]:
    """The LLM's own chat template around the video: text before it, after it, and the reply."""
    messages = [{"role": "user", "content": f"{PLACEHOLDER}\n{question}"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    before, after = prompt.split(PLACEHOLDER)
    return before, after, answer + tokenizer.eos_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svlm", help="local Qwen3-VL checkpoint folder (default: tiny random)")
    parser.add_argument("--llm", help="local causal LM checkpoint folder (default: tiny random Llama 3)")
    parser.add_argument("--k-max", type=int, default=8, help="memory tokens per segment (128 in the paper)")
    parser.add_argument("--budget", type=int, default=16, help="visual tokens for the whole video")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)

    svlm_dir, llm_dir = tiny_pair(args.svlm, args.llm)
    compressor = Qwen3VLCompressor(pretrained=svlm_dir, k_max=args.k_max)
    llm = AutoModelForCausalLM.from_pretrained(llm_dir)
    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    compressor.requires_grad_(False)
    compressor.memory_tokens.requires_grad_(True)  # Tempo's learned queries into the SVLM
    llm.requires_grad_(False)
    projector = nn.Linear(compressor.hidden_size, llm.get_input_embeddings().embedding_dim)
    allocator = ATAAllocator(mode="exact")
    optimizer = torch.optim.AdamW([compressor.memory_tokens, *projector.parameters()], lr=1e-2)
    embed = llm.get_input_embeddings()

    def text(s: str) -> torch.Tensor:
        return embed(torch.tensor(tokenizer(s, add_special_tokens=False)["input_ids"]))

    segments = make_segments(clip(), window=4)
    question, answer = "When does the red square appear?", "At 8 seconds"
    before, after, reply = prompt_pieces(tokenizer, question, answer)
    for step in range(args.steps):
        out = compressor([segments], [question])  # memory [S, k_max, d], relevance [S]
        counts = allocator(out.relevance.detach(), k_max=args.k_max, budget=args.budget, k_min=1)
        kept = reduce_tokens(out.memory, counts, "head")
        visual = [torch.cat([text(f"<{float(t):.1f} seconds>"), projector(k)]) for k, t in zip(kept, segments.times) if len(k)]
        pieces = [text(before), *visual, text(after)]
        target = text(reply)
        inputs = torch.cat([*pieces, target])[None]
        labels = torch.full(inputs.shape[:2], -100)
        labels[0, -len(target) :] = torch.tensor(tokenizer(reply, add_special_tokens=False)["input_ids"])
        loss = llm(inputs_embeds=inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        print(f"step {step}: loss {loss.item():.4f}, tokens per segment {counts.tolist()} (budget {args.budget})")
        assert int(counts.sum()) <= args.budget


if __name__ == "__main__":
    main()
