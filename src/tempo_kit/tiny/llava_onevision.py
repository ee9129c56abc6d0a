"""A tiny LLaVA-OneVision: SigLIP vision tower, 2-layer MLP projector, Qwen2 language model.

The architecture switches are llava-onevision-qwen2-7b-ov's (SigLIP without its pooling head,
``vision_feature_select_strategy="full"``, last-layer features, a learned ``image_newline``,
untied embeddings, the released chat template); only sizes shrink. 42-pixel frames of 14-pixel
patches make a 3 × 3 feature grid, which the video path's bilinear 2 × 2 pooling turns into
``ceil(3/2)² = 4`` tokens per frame — an odd grid, so the rounding up is exercised.
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.checkpoint import save_checkpoint, special_token_ids, write_json
from tempo_kit.tiny.tokenizer import with_family_tokens

#: LLaVA-OneVision's placeholder tokens (added after Qwen2's own specials in the released vocabulary).
LLAVA_OV_SPECIAL_TOKENS = ["<image>", "<video>"]

#: The chat template of the released llava-hf LLaVA-OneVision processors: media first, then text,
#: each turn ``<|im_start|>{role}\n … <|im_end|>\n``.
LLAVA_OV_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\\n' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] }}{% endgeneration %}{% endfor %}{% endif %}{{'<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TINY_TEXT = {  # Qwen2-7B's values (llava-onevision-qwen2-7b-ov) in the comments
    "model_type": "qwen2",
    "hidden_size": 64,  # 3584
    "intermediate_size": 128,  # 18944
    "num_hidden_layers": 2,  # 28
    "num_attention_heads": 4,  # 28
    "num_key_value_heads": 2,  # 4
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": False,
}

TINY_VISION = {  # SigLIP so400m's values in the comments
    "model_type": "siglip_vision_model",
    "hidden_size": 32,  # 1152
    "intermediate_size": 64,  # 4304
    "num_hidden_layers": 2,  # 26
    "num_attention_heads": 2,  # 16
    "image_size": 42,  # 384
    "patch_size": 14,  # 14
    "vision_use_head": False,
}

#: The video processor's square (``size``) and the released checkpoints' normalisation.
VIDEO_PROCESSOR = {
    "size": {"height": TINY_VISION["image_size"], "width": TINY_VISION["image_size"]},
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "rescale_factor": 1 / 255,
    "resample": 3,
    "do_resize": True,
    "do_rescale": True,
    "do_normalize": True,
    "video_processor_type": "LlavaOnevisionVideoProcessor",
    "processor_class": "LlavaOnevisionProcessor",
}


def llava_onevision_tokenizer(tokenizer):
    """A copy of ``tokenizer`` with LLaVA-OneVision's ``<image>``/``<video>`` tokens and chat template."""
    return with_family_tokens(tokenizer, LLAVA_OV_SPECIAL_TOKENS, LLAVA_OV_CHAT_TEMPLATE)


def save_tiny_llava_onevision(out_dir: str | Path, tokenizer, seed: int = 0) -> Path:
    """Write a randomly initialised tiny ``LlavaOnevisionForConditionalGeneration`` + processor files."""
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    tokenizer = llava_onevision_tokenizer(tokenizer)
    ids = special_token_ids(tokenizer, ("<|im_end|>", "<|endoftext|>", "<image>", "<video>"))
    side = TINY_VISION["image_size"]
    config = LlavaOnevisionConfig(
        text_config={**TINY_TEXT, "vocab_size": len(tokenizer), "bos_token_id": ids["<|endoftext|>"],
                     "eos_token_id": ids["<|im_end|>"]},  # fmt: skip
        vision_config=dict(TINY_VISION),
        image_token_index=ids["<image>"],
        video_token_index=ids["<video>"],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=[[side * h, side * w] for h in (1, 2) for w in (1, 2)],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    out = save_checkpoint(LlavaOnevisionForConditionalGeneration(config).eval(), tokenizer, out_dir)
    image = {k: v for k, v in VIDEO_PROCESSOR.items() if k not in ("video_processor_type",)}
    write_json(out / "preprocessor_config.json", {**image, "image_processor_type": "LlavaOnevisionImageProcessor",
                                                  "image_grid_pinpoints": config.image_grid_pinpoints})  # fmt: skip
    write_json(out / "video_preprocessor_config.json", VIDEO_PROCESSOR)
    num_image_tokens = (side // TINY_VISION["patch_size"]) ** 2
    write_json(out / "processor_config.json", {"num_image_tokens": num_image_tokens, "vision_feature_select_strategy": "full",
                                               "vision_aspect_ratio": "anyres_max_9"})  # fmt: skip
    write_json(out / "chat_template.json", {"chat_template": LLAVA_OV_CHAT_TEMPLATE})
    return out
