"""A tiny Qwen3-VL (the SVLM) with the real architecture and a real checkpoint's file layout.

Every architectural switch matches Qwen3-VL-2B-Instruct (tied embeddings, interleaved M-RoPE,
DeepStack, patch 16, temporal patch 2, spatial merge 2, gelu_pytorch_tanh vision MLP, q/k norms,
grouped-query attention); only the widths and depths shrink so a forward pass on a CPU takes
milliseconds. The processor configs carry the real values, so the kit's patchify reads the same
numbers from a tiny checkpoint as from a downloaded one.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Per-dimension sizes of the tiny SVLM (the real 2B values are in the comments).
TINY_SVLM_TEXT = {
    "hidden_size": 64,  # 2048
    "intermediate_size": 128,  # 6144
    "num_hidden_layers": 2,  # 28
    "num_attention_heads": 4,  # 16
    "num_key_value_heads": 2,  # 8
    "head_dim": 16,  # 128
    "hidden_act": "silu",
    "max_position_embeddings": 262144,
    "rms_norm_eps": 1e-6,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
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
    "hidden_act": "gelu_pytorch_tanh",
    "in_channels": 3,
    "patch_size": 16,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
    "num_position_embeddings": 64,  # 2304 (a square: 8 x 8 learned grid, resampled per image)
    "deepstack_visual_indexes": [0, 1],  # [5, 11, 17]
    "initializer_range": 0.02,
}

#: Image processor config as Qwen3-VL-2B-Instruct ships it (min/max pixels in ``size``).
PREPROCESSOR_CONFIG = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
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
    "image_processor_type": "Qwen2VLImageProcessor",
}

#: Video processor config as Qwen3-VL-2B-Instruct ships it.
VIDEO_PREPROCESSOR_CONFIG = {
    "size": {"longest_edge": 25165824, "shortest_edge": 4096},
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
    "do_sample_frames": True,
    "fps": 2,
    "min_frames": 4,
    "max_frames": 768,
    "resample": 3,
    "processor_class": "Qwen3VLProcessor",
    "video_processor_type": "Qwen3VLVideoProcessor",
}


def tiny_qwen3_vl_config(tokenizer):
    """A ``Qwen3VLConfig`` whose special-token ids come from ``tokenizer`` (vocab = its length)."""
    from transformers import Qwen3VLConfig

    def token_id(token: str) -> int:
        ids = tokenizer.convert_tokens_to_ids(token)
        if ids is None or ids == tokenizer.unk_token_id:
            raise ValueError(f"tokenizer has no {token!r} token; Qwen3-VL needs it")
        return int(ids)

    eos = token_id("<|im_end|>")
    bos = token_id("<|endoftext|>")
    text = {
        **TINY_SVLM_TEXT,
        "vocab_size": len(tokenizer),
        "bos_token_id": bos,
        "eos_token_id": eos,
        "tie_word_embeddings": True,
    }
    vision = {**TINY_SVLM_VISION, "out_hidden_size": TINY_SVLM_TEXT["hidden_size"]}
    return Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=token_id("<|image_pad|>"),
        video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"),
        vision_end_token_id=token_id("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def save_tiny_qwen3_vl(out_dir: str | Path, tokenizer, seed: int = 0) -> Path:
    """Write a randomly initialised tiny ``Qwen3VLForConditionalGeneration`` + processor files."""
    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = tiny_qwen3_vl_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[config.text_config.eos_token_id, config.text_config.bos_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    _write_json(out / "preprocessor_config.json", PREPROCESSOR_CONFIG)
    _write_json(out / "video_preprocessor_config.json", VIDEO_PREPROCESSOR_CONFIG)
    _write_json(out / "chat_template.json", {"chat_template": tokenizer.chat_template})
    return out


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
