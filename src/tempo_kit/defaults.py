"""Every number the released Tempo fixes, in one torch-free module, with the three places' presets.

The paper and the released scripts (compatibility §1–§4, §7) fix how a video is sampled, how long
the LLM's context is, what the allocation spends and how long an answer may be; training,
inference and evaluation each use their own mix of them. Everything else reads them from here:
:class:`~tempo_kit.video.reading.Sampling` (and its presets), the model config
(:class:`~tempo_kit.model.config.TempoConfig`), the command-line switches and the recipes. Without
torch, so the command-line parsers load fast.
"""

from __future__ import annotations

from types import MappingProxyType

# ------------------------------------------------------------------------------------ sampling
#: Frames sampled per second of video (paper §4.1: "We extract frames at 2 FPS via Decord").
DEFAULT_SAMPLE_FPS = 2.0
#: Cap on sampled frames per video at inference (paper Tab. 1; 2048 in the scaling run). Training
#: stages use their own cap (8 / 128 / 384, paper Table A) through the same parameter.
DEFAULT_MAX_FRAMES = 1024
#: Fewest frames taken from any video at inference (released implementation), so a short clip
#: still fills a window.
DEFAULT_MIN_FRAMES = 4
#: Fewest frames the released evaluation samples per video (compatibility §1).
EVAL_MIN_FRAMES = 8
#: Long edge of a sampled frame, in pixels (paper Table A, "Max 512 (Long edge)").
DEFAULT_MAX_LONG_EDGE = 512
#: Every side is a multiple of this (the SVLM's 16-px patch).
DEFAULT_SIZE_MULTIPLE = 16
#: Frames per segment (paper §4.1): 4 in training, 8 at inference.
TRAIN_WINDOW = 4
INFERENCE_WINDOW = 8
#: Video decoder unless told otherwise (``pyav`` is the fallback backend).
DEFAULT_BACKEND = "decord"

# ------------------------------------------------------------------------------------ the LLM
#: LLM context cap at inference (the released inference script and demo app, compatibility §4).
DEFAULT_MAX_CONTEXT = 16384
#: LLM context cap in training (the released recipes).
DEFAULT_TRAIN_MAX_CONTEXT = 8192
#: LLM context cap of the released evaluation scripts, whatever the checkpoint says (compatibility §4).
EVAL_MAX_CONTEXT = 32768
#: Tokens the context cap keeps free for the answer at inference (released: 16).
DEFAULT_ANSWER_ROOM = 16
#: Most new tokens the LLM writes per answer (the released scripts' ``max_new_tokens``; greedy).
DEFAULT_MAX_NEW_TOKENS = 1024

# ------------------------------------------------------------------------------------ allocation
#: Visual-token budget B per video at inference (the paper's main 8K setting).
DEFAULT_BUDGET = 8192
#: Minimal anchor tokens per segment at inference (paper §3.3, k_min = 4).
DEFAULT_K_MIN = 4
#: Intra-segment reduction at inference: head truncation (paper Table 2C's default).
DEFAULT_REDUCTION = "head"

# ------------------------------------------------------------------------------------ presets
#: What each place changes on the :class:`~tempo_kit.video.reading.Sampling` field defaults.
SAMPLING_PRESETS = MappingProxyType(
    {
        "training": MappingProxyType({"window": TRAIN_WINDOW, "preprocessing": "released"}),
        "inference": MappingProxyType({}),
        "evaluation": MappingProxyType({"min_frames": EVAL_MIN_FRAMES}),
    }
)
#: The LLM context cap of each place.
CONTEXT_PRESETS = MappingProxyType(
    {"training": DEFAULT_TRAIN_MAX_CONTEXT, "inference": DEFAULT_MAX_CONTEXT, "evaluation": EVAL_MAX_CONTEXT}
)
