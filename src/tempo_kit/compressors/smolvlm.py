"""Tempo's compressor on SmolVLM2 (Idefics3 lineage): SigLIP + pixel shuffle + a Llama-style LM.

What the adapter does, as ``SmolVLMProcessor`` does for a video:

- every frame is resized to the vision tower's square (``max_image_size``), rescaled and
  normalised, and becomes one ``<fake_token_around_image><global-img><image>×n<fake_token_around_image>``
  block; ``n`` = ``image_seq_len`` (patches per frame / scale_factor²);
- time is told in text, per frame, from the frames' absolute times in the video:
  ``"You are provided the following series of {four} frames from a {0:00:07} [H:MM:SS] video.\\n"``,
  then ``"\\nFrame from MM:SS:"`` before each frame's block, then ``"\\n\\n"``;
- the turn is SmolVLM's chat template (``<|im_start|>System: …<end_of_utterance>\\nUser: …``);
- positions are 1-D (the core's default).

The video block ends in text (``"\\n\\n"``) that runs into ``"\\nQuery:\\n"``, so the two halves
tokenise together: the sequence is built whole and no prefix is cached. Images take the single
(unsplit) image form; the processor's first resize (longest edge to ``size``) is skipped, frames
go straight to the square.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tempo_kit.compressors.family import FamilyAdapter
from tempo_kit.compressors.memory import MemoryTokenCompressor
from tempo_kit.compressors.prompts import QUERY_PREFIX
from tempo_kit.compressors.sequence import assemble, check_placeholder, special_token_ids, text_ids
from tempo_kit.compressors.square_frames import PixelNormaliser
from tempo_kit.compressors.visual import slot_of
from tempo_kit.errors import ConfigError
from tempo_kit.hf_folder import read_json_if_present
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import Segments

SPECIALS = ("<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<global-img>", "<image>")
#: SmolVLM's video prompt (transformers' ``processing_smolvlm``).
VIDEO_INTRO = "You are provided the following series of {count} frames from a {duration} [H:MM:SS] video.\n"
FRAME_STAMP = "\nFrame from {minutes:02d}:{seconds:02d}:"
MEDIA_OUTTRO = "\n\n"
#: SmolVLM2's processor mean and std where a checkpoint's file does not say.
SMOLVLM_MEAN, SMOLVLM_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


@dataclass
class Frames:
    """One segment as SmolVLM sees it: ``pixels`` ``[F, 3, S, S]`` (``None`` when only counted)."""

    slot: str
    times: list[float]
    pixels: Tensor | None = None


class SmolVLMFamily(FamilyAdapter):
    """SmolVLM2's input: one square image per frame, per-frame time stamps in text, 1-D positions."""

    name = "smolvlm"
    model_types = ("smolvlm",)
    hub_example = "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
    time_encoding = "per_frame"
    prefix_cache = False
    packs_segments = True
    embeddings_key = "svlm.text_model.embed_tokens.weight"

    def __init__(self, path: Path, tokenizer: Any, config: Any) -> None:
        super().__init__(path, tokenizer, config)
        try:
            import num2words  # noqa: F401  (the frame count in words)
        except ImportError:
            raise ConfigError("compressor 'smolvlm' needs num2words: pip install 'tempo-kit[families]'") from None
        processor = read_json_if_present(path / "preprocessor_config.json")
        vision = config.vision_config
        self.size = int(processor.get("max_image_size", {}).get("longest_edge", vision.image_size))
        self.pixels = PixelNormaliser.from_processor(processor, (self.size, self.size), SMOLVLM_MEAN, SMOLVLM_STD)
        self.tokens_per_frame = (self.size // vision.patch_size) ** 2 // config.scale_factor**2
        self.ids = special_token_ids(tokenizer, SPECIALS, "SmolVLM", path)
        check_placeholder(self.ids, "<image>", config.image_token_id, path)
        self._encode = partial(text_ids, tokenizer)

    @staticmethod
    def model_class() -> type:
        from transformers.models.smolvlm.modeling_smolvlm import SmolVLMModel

        return SmolVLMModel

    @staticmethod
    def layer_classes() -> tuple[type, ...]:
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer
        from transformers.models.smolvlm.modeling_smolvlm import SmolVLMEncoderLayer

        return (LlamaDecoderLayer, SmolVLMEncoderLayer)

    def _frames(self, segments: Segments, index: int, j: int, pixels: bool, device=None) -> Frames:
        times = segments.frame_times[j, : segments.frame_count(j)].tolist()
        return Frames(slot_of(segments, index), times, self.pixels(segments, j, device) if pixels else None)

    def encode_visual(self, segments: Sequence[Segments], items, device) -> list[Frames]:
        return [self._frames(segments[i], i, j, True, device) for i, j in items]

    def visual_inputs(self, visuals: Sequence[Frames], device) -> dict[str, Tensor]:
        """``pixel_values`` ``[B, most frames, 3, S, S]``; a row's missing frames are all-zero
        images, which the model skips, as the processor pads a batch of videos."""
        most = max(len(v.pixels) for v in visuals)
        pixels = torch.zeros(len(visuals), most, 3, self.size, self.size, device=device)
        for row, v in enumerate(visuals):
            pixels[row, : len(v.pixels)] = v.pixels
        mask = torch.ones(len(visuals), most, self.size, self.size, dtype=torch.bool, device=device)
        return {"pixel_values": pixels, "pixel_attention_mask": mask}

    def sequence_ids(self, visual: Frames, prompt: str, query: str) -> list[int]:
        image = ["<fake_token_around_image>", "<global-img>", (self.ids["<image>"], self.tokens_per_frame),
                 "<fake_token_around_image>"]  # fmt: skip
        parts: list = ["<|im_start|>", "System: " + prompt, "<end_of_utterance>", "\nUser:"]
        if visual.slot == "video":
            duration = timedelta(seconds=int(visual.times[-1]))
            parts += [" " + VIDEO_INTRO.format(count=_number_words(len(visual.times)), duration=duration)]
            for t in visual.times:
                parts += [FRAME_STAMP.format(minutes=int(t // 60), seconds=int(t % 60)), *image]
            parts += [MEDIA_OUTTRO]
        else:  # an image opens the turn: the template writes "User:" with no space
            parts += image
        parts += [QUERY_PREFIX + query, "<end_of_utterance>", "\nAssistant:"]
        return assemble(parts, self.ids, self._encode)

    def sequence_lengths(self, segments: Segments, prompt: str, query: str) -> list[int]:
        return [len(self.sequence_ids(self._frames(segments, 0, j, False), prompt, query)) for j in range(len(segments))]


def _number_words(n: int) -> str:
    """``num2words(n)`` as SmolVLM's processor spells a frame count."""
    from num2words import num2words

    return num2words(n)


@COMPRESSORS.register("smolvlm")
class SmolVLMCompressor(MemoryTokenCompressor):
    """Tempo's compressor on a Hugging Face SmolVLM2 checkpoint (e.g. SmolVLM2-256M-Video-Instruct).

    Settings: the memory-token core's (:class:`~tempo_kit.compressors.memory.MemoryTokenCompressor`).
    """

    family = SmolVLMFamily
