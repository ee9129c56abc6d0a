"""A tiny Qwen3-VL (the SVLM) with the real architecture and a real checkpoint's file layout.

Every architectural switch matches Qwen3-VL-2B-Instruct (tied embeddings, interleaved M-RoPE,
DeepStack, patch 16, temporal patch 2, spatial merge 2, gelu_pytorch_tanh vision MLP, q/k norms,
grouped-query attention); only the widths and depths shrink so a forward pass on a CPU takes
milliseconds. The processor configs carry the real values, so the kit's patchify reads the same
numbers from a tiny checkpoint as from a downloaded one.
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.checkpoint import save_checkpoint, special_token_ids, write_json

#: Architecture switches of the Qwen3-VL-2B language model, shared by the tiny and real-shape SVLMs.
QWEN3_VL_TEXT_SWITCHES = {
    "hidden_act": "silu",
    "max_position_embeddings": 262144,
    "rms_norm_eps": 1e-6,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
}

#: Architecture switches of the Qwen3-VL-2B vision tower, shared by the tiny and real-shape SVLMs.
QWEN3_VL_VISION_SWITCHES = {
    "hidden_act": "gelu_pytorch_tanh",
    "in_channels": 3,
    "patch_size": 16,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
    "initializer_range": 0.02,
}

#: Per-dimension sizes of the tiny SVLM (the real 2B values are in the comments).
TINY_SVLM_TEXT = {
    "hidden_size": 64,  # 2048
    "intermediate_size": 128,  # 6144
    "num_hidden_layers": 3,  # 28 (3 > the 2 DeepStack injections, so every merger reaches the output)
    "num_attention_heads": 4,  # 16
    "num_key_value_heads": 2,  # 8
    "head_dim": 16,  # 128
    **QWEN3_VL_TEXT_SWITCHES,
    "use_cache": True,
    # M-RoPE: sections (t, h, w) sum to head_dim / 2, interleaved; theta as in the real model.
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 5000000.0,
        "mrope_section": [4, 2, 2],  # [24, 20, 20]
        "mrope_interleaved": True,
    },
}

TINY_SVLM_VISION = {
    "depth": 3,  # 24
    "hidden_size": 32,  # 1024
    "intermediate_size": 64,  # 4096
    "num_heads": 2,  # 16
    **QWEN3_VL_VISION_SWITCHES,
    "num_position_embeddings": 64,  # 2304 (a square: 8 x 8 learned grid, resampled per image)
    "deepstack_visual_indexes": [0, 1],  # [5, 11, 17]
}

#: What the image and the video processor configs of Qwen3-VL-2B-Instruct have in common.
_PROCESSOR_COMMON = {
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "do_resize": True,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "do_convert_rgb": True,
    "resample": 3,
    "processor_class": "Qwen3VLProcessor",
}

#: Image processor config as Qwen3-VL-2B-Instruct ships it (min/max pixels in ``size``).
PREPROCESSOR_CONFIG = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    **_PROCESSOR_COMMON,
    "image_processor_type": "Qwen2VLImageProcessor",
}

#: Video processor config as Qwen3-VL-2B-Instruct ships it.
VIDEO_PREPROCESSOR_CONFIG = {
    "size": {"longest_edge": 25165824, "shortest_edge": 4096},
    **_PROCESSOR_COMMON,
    "do_sample_frames": True,
    "fps": 2,
    "min_frames": 4,
    "max_frames": 768,
    "video_processor_type": "Qwen3VLVideoProcessor",
}

#: Special tokens whose ids a Qwen3-VL config names.
_SPECIAL_TOKENS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|vision_start|>",
    "<|vision_end|>",
)


def qwen3_vl_config(text: dict, vision: dict, tokenizer, vocab_size: int):
    """A ``Qwen3VLConfig`` of ``text`` / ``vision`` sizes, tied embeddings, special ids from ``tokenizer``."""
    from transformers import Qwen3VLConfig

    ids = special_token_ids(tokenizer, _SPECIAL_TOKENS)
    return Qwen3VLConfig(
        text_config={
            **text,
            "vocab_size": vocab_size,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "tie_word_embeddings": True,
        },
        vision_config=dict(vision),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def tiny_qwen3_vl_config(tokenizer):
    """A ``Qwen3VLConfig`` whose special-token ids come from ``tokenizer`` (vocab = its length)."""
    vision = {**TINY_SVLM_VISION, "out_hidden_size": TINY_SVLM_TEXT["hidden_size"]}
    return qwen3_vl_config(TINY_SVLM_TEXT, vision, tokenizer, len(tokenizer))


def write_processor_files(out_dir: str | Path, tokenizer) -> None:
    """The image / video processor configs and the chat template, as Qwen3-VL-2B-Instruct ships them."""
    out = Path(out_dir)
    write_json(out / "preprocessor_config.json", PREPROCESSOR_CONFIG)
    write_json(out / "video_preprocessor_config.json", VIDEO_PREPROCESSOR_CONFIG)
    write_json(out / "chat_template.json", {"chat_template": tokenizer.chat_template})


def save_tiny_qwen3_vl(out_dir: str | Path, tokenizer, seed: int = 0) -> Path:
    """Write a randomly initialised tiny ``Qwen3VLForConditionalGeneration`` + processor files."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    config = tiny_qwen3_vl_config(tokenizer)
    torch.manual_seed(seed)
    out = save_checkpoint(Qwen3VLForConditionalGeneration(config).eval(), tokenizer, out_dir)
    write_processor_files(out, tokenizer)
    return out
