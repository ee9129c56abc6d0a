"""A tiny Qwen2.5-VL with the real architecture switches and a real checkpoint's file layout.

Everything Qwen2.5-VL does differently from Qwen3-VL is kept: the window-attention ViT (patch 14,
windows of ``window_size`` pixels, full attention only in ``fullatt_block_indexes``), RMSNorm and
SiLU gated MLP in the vision blocks, M-RoPE whose temporal axis counts ``tokens_per_second``
(absolute time), no DeepStack, CLIP's mean/std. Only widths and depths shrink.
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.checkpoint import save_checkpoint, special_token_ids, write_json

#: Per-dimension sizes of the tiny Qwen2.5-VL language model (Qwen2.5-VL-3B's in the comments).
TINY_TEXT = {
    "hidden_size": 64,  # 2048
    "intermediate_size": 128,  # 11008
    "num_hidden_layers": 2,  # 36
    "num_attention_heads": 4,  # 16
    "num_key_value_heads": 2,  # 2
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 128000,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 2, 2]},  # [16, 24, 24]
}

TINY_VISION = {
    "depth": 2,  # 32
    "hidden_size": 32,  # 1280
    "intermediate_size": 64,  # 3420
    "num_heads": 2,  # 16
    "hidden_act": "silu",
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "tokens_per_second": 2,
    "window_size": 56,  # 112: 2 x 2 merged tokens per window here, so windows really cut the frame
    "fullatt_block_indexes": [1],  # [7, 15, 23, 31]
}

#: Qwen2.5-VL-3B-Instruct's ``preprocessor_config.json`` (Qwen2-VL image processor).
PREPROCESSOR_CONFIG = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}

_SPECIAL_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")


def tiny_qwen2_5_vl_config(tokenizer):
    """A ``Qwen2_5_VLConfig`` of the tiny sizes, tied embeddings (as the 3B), ids from ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    ids = special_token_ids(tokenizer, _SPECIAL_TOKENS)
    return Qwen2_5_VLConfig(
        text_config={
            **TINY_TEXT,
            "vocab_size": len(tokenizer),
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "tie_word_embeddings": True,
        },
        vision_config={**TINY_VISION, "out_hidden_size": TINY_TEXT["hidden_size"]},
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def save_tiny_qwen2_5_vl(out_dir: str | Path, tokenizer, seed: int = 0) -> Path:
    """Write a randomly initialised tiny ``Qwen2_5_VLForConditionalGeneration`` + processor files.

    Qwen2.5-VL ships one processor config; its videos follow the same per-frame pixel bounds, so the
    video config written beside it is the same file.
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    out = save_checkpoint(Qwen2_5_VLForConditionalGeneration(tiny_qwen2_5_vl_config(tokenizer)).eval(), tokenizer, out_dir)
    write_json(out / "preprocessor_config.json", PREPROCESSOR_CONFIG)
    write_json(out / "video_preprocessor_config.json", {**PREPROCESSOR_CONFIG, "video_processor_type": "Qwen2VLVideoProcessor"})
    write_json(out / "chat_template.json", {"chat_template": tokenizer.chat_template})
    return out
