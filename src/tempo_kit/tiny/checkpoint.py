"""The parts every random-weight checkpoint shares: Qwen special-token ids and the saved folder.

The tiny checkpoints and the real-shape ones differ only in sizes and vocabulary; both take their
special-token ids from the kit's tokenizer and write the same files, so that code lives here once.
"""

from __future__ import annotations

import json
from pathlib import Path


def special_token_ids(tokenizer, names: tuple[str, ...]) -> dict[str, int]:
    """``{token: id}`` for each of ``names``; a token the tokenizer lacks raises ``ValueError``."""
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in names}
    missing = [name for name, value in ids.items() if value is None or value == tokenizer.unk_token_id]
    if missing:
        raise ValueError(f"tokenizer lacks Qwen special tokens {missing}")
    return {name: int(value) for name, value in ids.items()}


def save_checkpoint(model, tokenizer, out_dir: str | Path) -> Path:
    """Save ``model`` with greedy generation defaults (stop at ``<|im_end|>`` or ``<|endoftext|>``)
    and ``tokenizer`` into ``out_dir``, as a downloaded checkpoint is laid out."""
    from transformers import GenerationConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = model.config.get_text_config()
    model.generation_config = GenerationConfig(
        bos_token_id=text.bos_token_id,
        eos_token_id=[text.eos_token_id, text.bos_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def write_json(path: Path, data: dict) -> None:
    """``data`` as sorted, indented JSON (the processor configs of a checkpoint)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
