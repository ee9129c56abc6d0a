"""A tiny InternVL 3 (transformers' native ``InternVLForConditionalGeneration``): InternViT, pixel
shuffle by ``downsample_ratio``, an MLP projector, a Qwen2 language model.

The architecture switches are InternVL3-1B-hf's (patch 14, pixel shuffle 0.5, the CLS token
dropped, LayerNorm ViT blocks with layer scale, tied Qwen2.5 embeddings); only sizes shrink:
56-pixel frames of 4 × 4 patches give 2 × 2 = 4 image tokens each. The tokenizer is the kit's tiny
one plus InternVL's image markers (``<img>``, ``</img>``, ``<IMG_CONTEXT>``) and chat template.
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.checkpoint import save_checkpoint, write_json
from tempo_kit.tiny.tokenizer import with_family_tokens

#: InternVL's image markers, named as its processor reads them from the tokenizer.
INTERNVL_IMAGE_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>"}

#: InternVL3-*-hf's chat template (transformers' conversion script): ChatML, ``<image>\\n`` /
#: ``<video>\\n`` where a visual goes, no default system turn.
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\n' }}{% elif content['type'] == 'text' %}"
    "{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{'<|im_end|>\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)

TINY_TEXT = {  # InternVL3-1B's Qwen2.5-0.5B values in the comments
    "model_type": "qwen2",
    "hidden_size": 64,  # 896
    "intermediate_size": 128,  # 4864
    "num_hidden_layers": 2,  # 24
    "num_attention_heads": 4,  # 14
    "num_key_value_heads": 2,  # 2
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": True,
}

TINY_VISION = {  # InternViT-300M's values in the comments
    "hidden_size": 32,  # 1024
    "intermediate_size": 64,  # 4096
    "num_hidden_layers": 2,  # 24
    "num_attention_heads": 2,  # 16
    "image_size": 56,  # 448
    "patch_size": 14,  # 14
    "attention_bias": True,
    "layer_scale_init_value": 0.1,
    "norm_type": "layer_norm",
}

#: InternVL3-*-hf's image processor settings (ImageNet mean/std), at the tiny frame size.
PROCESSOR = {
    "size": {"height": TINY_VISION["image_size"], "width": TINY_VISION["image_size"]},
    "do_resize": True,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "processor_class": "InternVLProcessor",
}


def internvl_tokenizer(tokenizer):
    """A copy of ``tokenizer`` with InternVL's image markers (also as ``tokenizer.start_image_token`` …)
    and chat template."""
    tokenizer = with_family_tokens(tokenizer, INTERNVL_IMAGE_TOKENS.values(), INTERNVL_CHAT_TEMPLATE)
    # named, as the real tokenizer_config.json has them: InternVLProcessor reads ``tokenizer.start_image_token`` …
    tokenizer._set_model_specific_special_tokens(INTERNVL_IMAGE_TOKENS)
    return tokenizer


def save_tiny_internvl(out_dir: str | Path, tokenizer, seed: int = 0) -> Path:
    """Write a randomly initialised tiny ``InternVLForConditionalGeneration`` + processor files."""
    import torch
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    tokenizer = internvl_tokenizer(tokenizer)
    patches = TINY_VISION["image_size"] // TINY_VISION["patch_size"]
    config = InternVLConfig(
        text_config={**TINY_TEXT, "vocab_size": len(tokenizer), "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
                     "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
                     "pad_token_id": tokenizer.pad_token_id},  # fmt: skip
        vision_config=dict(TINY_VISION),
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=(patches // 2) ** 2,
        downsample_ratio=0.5,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    out = save_checkpoint(InternVLForConditionalGeneration(config).eval(), tokenizer, out_dir)
    write_json(out / "preprocessor_config.json", {**PROCESSOR, "crop_to_patches": False, "image_processor_type": "GotOcr2ImageProcessor"})
    write_json(out / "video_preprocessor_config.json", {**PROCESSOR, "video_processor_type": "InternVLVideoProcessor"})
    write_json(out / "processor_config.json", {"image_seq_length": config.image_seq_length, "processor_class": "InternVLProcessor"})
    write_json(out / "chat_template.json", {"chat_template": INTERNVL_CHAT_TEMPLATE})
    return out
