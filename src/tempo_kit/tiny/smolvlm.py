"""A tiny SmolVLM2 (Idefics3 lineage): SigLIP-style ViT, pixel-shuffle connector, Llama language model.

The architecture switches are SmolVLM2-256M-Video-Instruct's (patch 16, pixel shuffle by
``scale_factor`` 4, tied embeddings, Llama blocks); only sizes shrink: 64-pixel frames of 16
patches give 1 image token each after the shuffle. The tokenizer is the kit's tiny one plus
SmolVLM's special tokens and chat template (the shared one has Qwen's).
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.checkpoint import save_checkpoint, write_json
from tempo_kit.tiny.tokenizer import with_family_tokens

#: SmolVLM's special tokens (Idefics3's image markers, SmolLM2's end of turn).
SMOLVLM_SPECIAL_TOKENS = ["<fake_token_around_image>", "<global-img>", "<image>", "<end_of_utterance>"]

#: SmolVLM's chat template for image and video turns (transformers' ``processing_smolvlm``).
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'] is string %}{{': ' + message['content']}}{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

TINY_TEXT = {  # SmolLM2-135M's values in the comments
    "model_type": "llama",
    "hidden_size": 64,  # 576
    "intermediate_size": 128,  # 1536
    "num_hidden_layers": 2,  # 30
    "num_attention_heads": 4,  # 9
    "num_key_value_heads": 2,  # 3
    "rms_norm_eps": 1e-5,
    "rope_theta": 100000.0,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
}

TINY_VISION = {
    "hidden_size": 32,  # 768
    "intermediate_size": 64,  # 3072
    "num_hidden_layers": 2,  # 12
    "num_attention_heads": 2,  # 12
    "image_size": 64,  # 512
    "patch_size": 16,  # 16
}

#: 64 / 16 = 4 × 4 patches, shuffled by 4 → 1 token per frame (SmolVLM2-256M: 64).
SCALE_FACTOR = 4


def smolvlm_tokenizer(tokenizer):
    """A copy of ``tokenizer`` with SmolVLM's special tokens and chat template."""
    return with_family_tokens(tokenizer, SMOLVLM_SPECIAL_TOKENS, SMOLVLM_CHAT_TEMPLATE)


def save_tiny_smolvlm(out_dir: str | Path, tokenizer, seed: int = 0) -> Path:
    """Write a randomly initialised tiny ``SmolVLMForConditionalGeneration`` + processor files."""
    import torch
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration

    tokenizer = smolvlm_tokenizer(tokenizer)
    end = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    config = SmolVLMConfig(
        text_config={**TINY_TEXT, "vocab_size": len(tokenizer), "eos_token_id": end,
                     "bos_token_id": tokenizer.convert_tokens_to_ids("<|im_start|>"),
                     "pad_token_id": tokenizer.pad_token_id},  # fmt: skip
        vision_config=dict(TINY_VISION),
        scale_factor=SCALE_FACTOR,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    out = save_checkpoint(SmolVLMForConditionalGeneration(config).eval(), tokenizer, out_dir)
    size = TINY_VISION["image_size"]
    image = {
        "do_image_splitting": False,
        "max_image_size": {"longest_edge": size},
        "size": {"longest_edge": size},
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "rescale_factor": 1 / 255,
        "resample": 1,
        "image_processor_type": "SmolVLMImageProcessor",
        "processor_class": "SmolVLMProcessor",
    }
    write_json(out / "preprocessor_config.json", image)
    write_json(out / "video_preprocessor_config.json", {**image, "video_processor_type": "SmolVLMVideoProcessor"})
    write_json(out / "processor_config.json", {"image_seq_len": (size // TINY_VISION["patch_size"]) ** 2 // SCALE_FACTOR**2})
    write_json(out / "chat_template.json", {"chat_template": SMOLVLM_CHAT_TEMPLATE})
    return out
