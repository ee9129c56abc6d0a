"""Validation accuracy counts what the model generates from the question alone.

Two real decoders (the tiny Qwen3 LLM with its ``generate`` replaced) make the score predictable:
``prompt_echo`` answers with whatever its prompt holds after the last assistant header, so it
scores 1 if generation saw the reference answer and 0 if it did not; ``always_a`` answers "A",
so on a file whose answers are all "A" it must score 1. Both run through ``tempo-kit validate``'s
own path (recipe → TempoModule → Lightning validation loop → the kit's one choice metric).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tempo_kit.decoders.hf_causal_lm import HFCausalLM
from tempo_kit.recipes import load_recipe, to_dict
from tempo_kit.registry import DECODERS
from tempo_kit.training.commands import run_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ASSISTANT = "<|im_start|>assistant\n"

pytestmark = pytest.mark.slow


class _Replying(HFCausalLM):
    """The tiny LLM, answering with ``reply(prompt_text)`` instead of sampling from its head."""

    def reply(self, prompt: str) -> str:
        raise NotImplementedError

    @torch.no_grad()
    def generate(self, inputs_embeds, attention_mask, max_new_tokens=8, **kwargs):
        table = self.model.get_input_embeddings().weight
        rows = []
        for embeds, mask in zip(inputs_embeds, attention_mask):
            ids = []
            for vector in embeds[mask.bool()]:  # text positions hold exact rows of the table
                match = (table == vector).all(dim=1).nonzero()
                ids += match[:1, 0].tolist()  # projected memory tokens match no row
            text = self.tokenizer.decode(ids)
            answer = self.tokenizer(self.reply(text), add_special_tokens=False)["input_ids"][:max_new_tokens]
            rows.append(answer or [self.tokenizer.pad_token_id])
        width = max(len(r) for r in rows)
        padded = [r + [self.tokenizer.pad_token_id] * (width - len(r)) for r in rows]
        return torch.tensor(padded, device=inputs_embeds.device)


@DECODERS.register("prompt_echo")
class PromptEcho(_Replying):
    def reply(self, prompt: str) -> str:
        return prompt.rpartition(ASSISTANT)[2]


@DECODERS.register("always_a")
class AlwaysA(_Replying):
    def reply(self, prompt: str) -> str:
        return "A"


@DECODERS.register("visual_count")
class VisualCount(_Replying):
    """Answers with the number of visual tokens it was given (the rows that match no text token)."""

    @torch.no_grad()
    def generate(self, inputs_embeds, attention_mask, max_new_tokens=8, **kwargs):
        table = self.model.get_input_embeddings().weight
        self.counts = [
            sum(not (table == v).all(dim=1).any() for v in embeds[mask.bool()])
            for embeds, mask in zip(inputs_embeds, attention_mask)
        ]
        return super().generate(inputs_embeds, attention_mask, max_new_tokens, **kwargs)

    def reply(self, prompt: str) -> str:
        return str(self.counts.pop(0))


def validate(decoder: str, tiny_checkpoints, val_file: Path, out: Path, more=()) -> dict[str, float]:
    overrides = [
        f"model.compressor.pretrained={tiny_checkpoints['svlm']}",
        f"model.decoder.name={decoder}",
        f"model.decoder.pretrained={tiny_checkpoints['llm']}",
        "model.compressor.k_max=8",
        f"run.output_dir={out}",
        f"data.val_files={val_file}",
        "data.train_files=null",
        "data.max_frames=8",
        "data.max_long_edge=64",
        "data.preprocessing=qwen3_vl",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        *more,
    ]
    return run_recipe(to_dict(load_recipe(RECIPES / "demo.yaml", overrides)), "validate")


def test_a_model_that_copies_its_prompt_scores_zero(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    metrics = validate("prompt_echo", tiny_checkpoints, tiny_needle_benchmark, tmp_path)
    assert metrics["val/scored"] == 4 and metrics["val/accuracy"] == 0.0


def test_a_model_that_is_always_right_scores_one(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    rows = [json.loads(line) for line in tiny_needle_benchmark.read_text().splitlines()]
    assert {row["answer"] for row in rows} != {"A"}  # "A" is right only on the rewritten file below
    for row in rows:
        row["answer"] = row["conversations"][1]["value"] = "A"
    rewritten = tmp_path / "all_a.jsonl"
    rewritten.write_text("".join(json.dumps(row) + "\n" for row in rows))
    media = [f"data.media_root={tiny_needle_benchmark.parent}"]
    metrics = validate("always_a", tiny_checkpoints, rewritten, tmp_path / "run", media)
    assert metrics["val/scored"] == 4 and metrics["val/accuracy"] == 1.0


def test_the_budget_comparison_answers_under_each_allocator_at_its_budget(
    tiny_checkpoints, tiny_needle_benchmark, tmp_path
):
    """2 segments of k_max 8 (16 tokens); at budget 12 the even split keeps 6 + 6, ATA its 4-token
    anchors plus 4 more (12), Uniform Subsampling one segment at k_max (8)."""
    rows = [json.loads(line) for line in tiny_needle_benchmark.read_text().splitlines()]
    for row in rows:
        row["answer"] = row["conversations"][1]["value"] = "12"  # right only for 12 visual tokens
    rewritten = tmp_path / "twelve.jsonl"
    rewritten.write_text("".join(json.dumps(row) + "\n" for row in rows))
    more = [
        f"data.media_root={tiny_needle_benchmark.parent}",
        "data.window=4",  # 8 frames: 2 segments
        "validation.compare_budget=12",
        "validation.compare_allocators=[ata, uniform, subsample]",
    ]
    metrics = validate("visual_count", tiny_checkpoints, rewritten, tmp_path / "run", more)
    assert metrics["val/open_accuracy"] == 0.0  # the model's own budget keeps all 16
    assert metrics["val/ata_accuracy@12"] == 1.0 and metrics["val/uniform_accuracy@12"] == 1.0
    assert metrics["val/subsample_accuracy@12"] == 0.0


def test_an_unknown_compare_allocator_is_refused_before_training(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    from tempo_kit.errors import TempoKitError

    with pytest.raises(TempoKitError, match=r"validation.compare_allocators: unknown allocator 'unifrom'.*uniform"):
        validate("always_a", tiny_checkpoints, tiny_needle_benchmark, tmp_path,
                 ["validation.compare_budget=12", "validation.compare_allocators=[ata, unifrom]"])  # fmt: skip
