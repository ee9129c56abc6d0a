"""The recipe overrides every tiny training run in the tests shares: tiny models, synthetic data."""

from __future__ import annotations

from pathlib import Path


def tiny_run_overrides(tiny_checkpoints, data: Path) -> list[str]:
    """Tiny checkpoints (k_max 8), ``data`` for training and no validation, small frames in the
    ``qwen3_vl`` geometry (tiny from-scratch models: no 131072-px upscale), one sample per micro-batch."""
    return [
        f"model.compressor.pretrained={tiny_checkpoints['svlm']}",
        f"model.decoder.pretrained={tiny_checkpoints['llm']}",
        "model.compressor.k_max=8",
        f"data.train_files={data}",
        "data.val_files=null",
        "data.max_frames=8",
        "data.max_long_edge=64",
        "data.preprocessing=qwen3_vl",
        "trainer.micro_batch_size=1",
        "trainer.enable_progress_bar=false",
    ]
