"""Qwen3-VL-2B-Instruct / Qwen3-4B at their real shapes (compatibility §5), randomly initialised.

Benchmarks need the real widths, depths and vocabulary to measure speed and memory, but not the
real weights. :func:`real_shape_configs` gives the Hugging Face configs; :func:`write_real_shape_checkpoints`
writes random-weight checkpoints in the same on-disk layout as a downloaded model (config,
safetensors, tokenizer, processor configs), so the compressor and the decoder load them through
the same ``from_pretrained`` path as user checkpoints and nothing in the measured code is special.

The tokenizer is the kit's tiny one (Qwen's special tokens and chat template): ids beyond its
length are valid embedding rows of the 151936-row vocabulary that are simply never produced.
It splits text into more pieces than Qwen's real tokenizer, so prompts are somewhat longer than
with the real model; benchmarks count FLOPs from the lengths actually run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tempo_kit.tiny.checkpoint import save_checkpoint
from tempo_kit.tiny.qwen3 import QWEN3_SWITCHES, qwen3_config
from tempo_kit.tiny.qwen3_vl import (
    QWEN3_VL_TEXT_SWITCHES,
    QWEN3_VL_VISION_SWITCHES,
    qwen3_vl_config,
    write_processor_files,
)

#: Vocabulary of Qwen3-VL-2B-Instruct and Qwen3-4B.
REAL_VOCAB_SIZE = 151936

#: Qwen3-VL-2B-Instruct language model (compatibility §5).
SVLM_TEXT = {
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    **QWEN3_VL_TEXT_SWITCHES,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 5000000.0,
        "mrope_section": [24, 20, 20],
        "mrope_interleaved": True,
    },
}

#: Qwen3-VL-2B-Instruct vision tower (compatibility §5).
SVLM_VISION = {
    "depth": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_heads": 16,
    "out_hidden_size": 2048,
    **QWEN3_VL_VISION_SWITCHES,
    "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [5, 11, 17],
}

#: Qwen3-4B (compatibility §5).
LLM = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    **QWEN3_SWITCHES,
}


def real_shape_configs(tokenizer=None) -> dict[str, Any]:
    """``{"svlm": Qwen3VLConfig, "llm": Qwen3Config}`` at compatibility §5 shapes, special ids from ``tokenizer``.

    Without a tokenizer the kit's tiny one is used (the one :func:`write_real_shape_checkpoints` saves).
    """
    from tempo_kit.tiny.tokenizer import build_tokenizer

    tokenizer = tokenizer or build_tokenizer()
    if len(tokenizer) > REAL_VOCAB_SIZE:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the vocabulary {REAL_VOCAB_SIZE}")
    svlm = qwen3_vl_config(SVLM_TEXT, SVLM_VISION, tokenizer, REAL_VOCAB_SIZE)
    llm = qwen3_config(LLM, tokenizer, REAL_VOCAB_SIZE)
    return {"svlm": svlm, "llm": llm}


def build_real_shape_models(device: str = "meta", tokenizer=None) -> dict[str, Any]:
    """The two Hugging Face models at real shapes, built on ``device`` (``"meta"``: no memory, for counting)."""
    import torch
    from transformers import Qwen3ForCausalLM, Qwen3VLForConditionalGeneration

    configs = real_shape_configs(tokenizer)
    with torch.device(device):
        return {
            "svlm": Qwen3VLForConditionalGeneration(configs["svlm"]),
            "llm": Qwen3ForCausalLM(configs["llm"]),
        }


def write_real_shape_checkpoints(
    out_dir: str | Path,
    *,
    device: str = "cpu",
    dtype: str = "bfloat16",
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write random-weight ``out_dir/svlm`` (Qwen3-VL-2B shapes) and ``out_dir/llm`` (Qwen3-4B shapes).

    About 4.3 GB + 8.0 GB in bf16. The weights are initialised on ``device`` (``"cuda"`` takes
    seconds, a CPU minutes) with Hugging Face's own initialisation. An existing complete pair is
    reused unless ``overwrite``. Returns ``{"svlm": Path, "llm": Path}`` like :func:`tempo_kit.tiny.make_tiny`.
    """
    import torch
    from transformers import Qwen3ForCausalLM, Qwen3VLForConditionalGeneration

    from tempo_kit.dtypes import resolve_dtype
    from tempo_kit.tiny.tokenizer import build_tokenizer

    out = Path(out_dir)
    paths = {"svlm": out / "svlm", "llm": out / "llm"}
    # the processor config is written last, so its presence marks a complete pair
    done = all((p / "config.json").is_file() for p in paths.values())
    done = done and (paths["svlm"] / "video_preprocessor_config.json").is_file()
    if done and not overwrite:
        return paths
    tokenizer = build_tokenizer()
    configs = real_shape_configs(tokenizer)
    torch_dtype = resolve_dtype(dtype, "real-shape checkpoints: dtype")
    classes = {"svlm": Qwen3VLForConditionalGeneration, "llm": Qwen3ForCausalLM}
    for offset, (name, cls) in enumerate(classes.items()):
        torch.manual_seed(seed + offset)
        with torch.device(device):
            model = cls(configs[name]).to(torch_dtype).eval()
        save_checkpoint(model, tokenizer, paths[name])
        del model
    write_processor_files(paths["svlm"], tokenizer)
    return paths
