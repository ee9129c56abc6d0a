"""The JSON the server answers with: chat completions, their streamed chunks, the ``tempo`` record, errors.

A response is a normal OpenAI chat completion, so any client reads ``choices[0].message.content``;
the ``tempo`` object beside it says where the tokens went (per-segment time, relevance and tokens),
how many tokens the SVLM computed, each phase's seconds, and what came from the video cache.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch


def jsonable(value: Any) -> Any:
    """``value`` with tensors, tuples and paths turned into JSON types (anything else: its text)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    return str(value)


def tempo_record(result: Any, video_cache: str, sha256: str, entry: Any) -> dict[str, Any]:
    """What the pipeline did for one answer (an :class:`~tempo_kit.inference.result.InferenceResult`)
    and what its video's cache entry holds now."""
    return {
        "segments": jsonable(result.segment_records()),
        "svlm_tokens": result.svlm_tokens,
        "visual_tokens": result.tokens_used,
        "budget": result.budget,
        "k_min": result.allocation.k_min,
        "k_max": result.allocation.k_max,
        "num_frames": result.num_frames,
        "duration": result.duration,
        "window": result.window,
        "timings": {phase: round(float(s), 6) for phase, s in result.timings.items()},
        "reused": list(result.reused),
        "prefix_reused": "prefix" in result.reused,
        "video_cache": video_cache,
        "video_sha256": sha256,
        "cached_segments": entry.session.cached_segments,
        "video_cache_bytes": entry.nbytes,
        "settings": jsonable(result.settings),
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(request_id: str, model: str, answer: str, tempo: dict, tokens: dict) -> dict[str, Any]:
    """A ``chat.completion`` object with the ``tempo`` record."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": tokens,
        "tempo": tempo,
    }


def chunk(request_id: str, model: str, delta: dict, finish_reason: str | None = None, **extra: Any) -> str:
    """One server-sent event holding a ``chat.completion.chunk``."""
    body = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


#: The event that ends a stream, as OpenAI's servers send it.
STREAM_END = "data: [DONE]\n\n"

#: OpenAI's error ``type`` per HTTP status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "unprocessable_video",
    500: "server_error",
}


def error_body(status: int, message: str, request_id: str) -> dict[str, Any]:
    """OpenAI's error shape, one line, with the request id that finds the details in the server log."""
    one_line = " ".join(str(message).split())
    return {
        "error": {
            "message": one_line,
            "type": ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error"),
            "code": status,
            "request_id": request_id,
        }
    }
