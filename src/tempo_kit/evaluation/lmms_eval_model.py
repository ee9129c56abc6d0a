"""A kit model as an lmms-eval model: ``lmms-eval --model tempo_kit --model_args pretrained=DIR``.

Registered through the ``lmms_eval.models`` entry-point group (``pyproject.toml``), so installing
the kit with its ``[eval]`` extra is enough; the name ``tempo`` is an alias, so the released
evaluation commands run unchanged. It asks the model the way the released wrapper did
(compatibility §7): the task's ``doc_to_text`` string, unchanged, is both the SVLM query and the
LLM question; greedy decoding with the task's ``max_new_tokens``; at least 8 frames; a 32768-token
context; the model's own frame geometry (``released`` for the released weights), as ``infer``.

Model arguments (``--model_args key=value,...``): ``pretrained`` (kit-format folder, required),
``budget``, ``allocator`` (``ata:mode=exact`` style), ``reduction``, ``k_min``, ``device``,
``dtype``, ``max_context``, ``answers``, and every :class:`~tempo_kit.video.reading.Sampling`
field (``fps``, ``min_frames``, ``max_frames``, ``window``, ``preprocessing``, ``resize``,
``time_base``, ``backend``, ``max_long_edge``). Each is checked when the model is built, through
the same :func:`~tempo_kit.inference.question.resolve_question` as ``infer``.

Resuming: lmms-eval's ``--use_cache DIR`` stores answers only after the model has answered every
request of a run, so a killed run loses them all. ``answers=DIR`` keeps a journal per rank
(``DIR/rank<r>.jsonl``, one fsynced line per answered request, keyed by task, document, prompt,
video and these settings); a rerun answers only what no journal holds, whatever the number of
processes. Several processes (``accelerate launch`` or ``torchrun``) each answer the documents
lmms-eval gives their rank; each device runs a whole model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from tqdm.auto import tqdm

from tempo_kit.errors import ConfigError, did_you_mean
from tempo_kit.evaluation.journal import append_record, open_journal, read_journal
from tempo_kit.evaluation.protocol import EVAL_MAX_CONTEXT
from tempo_kit.video.reading import Sampling

#: The model's lmms-eval name and its alias (the released wrapper's name).
MODEL_NAME = "tempo_kit"
MODEL_ALIASES = ("tempo",)
#: New tokens when a task names no limit (the four long-video tasks all do: 16, or 32 for LongVideoBench).
FALLBACK_MAX_NEW_TOKENS = 16


def manifest() -> ModelManifest:
    """The entry point lmms-eval loads (``lmms_eval.models`` group)."""
    return ModelManifest(
        model_id=MODEL_NAME,
        simple_class_path=f"{__name__}.TempoKitLMM",
        aliases=MODEL_ALIASES,
    )


def _optional_int(value: Any, name: str) -> int | None:
    if value in (None, "", "None", "none"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--model_args {name}={value!r}: expected an integer") from None


def _model_arg(value: Any) -> Any:
    """A ``--model_args`` value (text) as YAML reads it: ``8`` an int, ``2.0`` a float, ``none`` null."""
    import yaml

    if not isinstance(value, str):
        return value
    return None if value.strip().lower() in ("", "none", "null") else yaml.safe_load(value)


def _request_key(task: str, doc_id: Any, context: str, videos: list[str], gen_kwargs: dict, setting: str) -> str:
    payload = json.dumps(
        [task, str(doc_id), context, videos, {k: v for k, v in sorted(gen_kwargs.items())}, setting],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _cut_at_stop(text: str, until: Any) -> str:
    """lmms-eval's ``until``: the reply ends before the first stop string."""
    stops = [until] if isinstance(until, str) else list(until or [])
    for stop in stops:
        if stop:
            text = text.split(stop, 1)[0]
    return text


class TempoKitLMM(lmms):
    """lmms-eval's ``generate_until`` on a kit-format Tempo model (see the module docstring)."""

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        budget: int | str | None = None,
        allocator: str | None = None,
        reduction: str | None = None,
        k_min: int | str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        max_context: int | str | None = EVAL_MAX_CONTEXT,
        answers: str | None = None,
        batch_size: int | str = 1,
        **sampling: Any,
    ) -> None:
        super().__init__()
        unknown = sorted(set(sampling) - set(Sampling.names()))
        if unknown:
            known = ["pretrained", "budget", "allocator", "reduction", "k_min", "device", "dtype", "max_context",
                     "answers", *Sampling.names()]
            raise ConfigError(
                f"--model_args: unknown key {unknown[0]!r}{did_you_mean(unknown[0], known)}; known: {', '.join(known)}"
            )
        if int(batch_size) != 1:
            raise ConfigError(f"--batch_size {batch_size}: the tempo_kit model answers one request at a time; use 1")
        import torch

        from tempo_kit.inference.api import TempoPipeline
        from tempo_kit.registry import parse_spec

        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)
        self.pipeline = TempoPipeline.from_pretrained(
            pretrained, device=device, dtype=dtype, reuse_last_video=True
        )
        #: the question's settings; the frame geometry is the model's own unless preprocessing= says
        self.call_kwargs = {
            "sampling": Sampling.evaluation().updated(
                {key: _model_arg(value) for key, value in sampling.items()}, "--model_args "
            ),
            "budget": _optional_int(budget, "budget"),
            "allocator": None if allocator in (None, "") else parse_spec(allocator, "--model_args allocator"),
            "reduction": reduction or None,
            "k_min": _optional_int(k_min, "k_min"),
            "max_context": _optional_int(max_context, "max_context"),
        }
        self.question = self.pipeline.question("?", **self.call_kwargs)  # every setting checked before a request
        self.setting = json.dumps(
            {"model": str(Path(pretrained).resolve()), **self.question.to_dict(), "query": None,
             "compressor_query": None}, sort_keys=True, default=str,
        )
        self.answers_dir = None if answers in (None, "") else Path(answers)
        self._answered: dict[str, str] = {}
        self._journal = None

    @property
    def device(self):
        return self._device

    def _open_answers(self) -> None:
        """Read every rank's journal (a rerun may use another number of processes); open ours."""
        if self.answers_dir is None or self._journal is not None:
            return
        for path in sorted(self.answers_dir.glob("rank*.jsonl")):
            for record in read_journal(path):
                self._answered[record["key"]] = record["response"]
        self._journal = open_journal(self.answers_dir / f"rank{self.rank}.jsonl")

    def _answer(self, context: str, video: str, gen_kwargs: dict) -> str:
        if gen_kwargs.get("do_sample") or float(gen_kwargs.get("temperature") or 0) > 0:
            raise ConfigError(
                f"the task asks for sampling ({gen_kwargs}); the tempo_kit model decodes greedily, "
                "as the released evaluation did: set temperature: 0 and do_sample: false in the task"
            )
        max_new_tokens = int(
            gen_kwargs.get("max_new_tokens") or gen_kwargs.get("max_gen_toks") or FALLBACK_MAX_NEW_TOKENS
        )
        result = self.pipeline.answer(video=video, query=context, max_new_tokens=max_new_tokens, **self.call_kwargs)
        return _cut_at_stop(result.answer, gen_kwargs.get("until"))

    def generate_until(self, requests) -> list[str]:
        self._open_answers()
        replies = []
        for request in tqdm(requests, desc="tempo_kit", disable=self.rank != 0):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            visuals = doc_to_visual(self.task_dict[task][split][doc_id])
            videos = [str(v) for v in (visuals or [])]
            if len(videos) != 1 or not isinstance(visuals[0], (str, os.PathLike)):
                raise ConfigError(
                    f"task {task} doc {doc_id}: doc_to_visual gave {len(videos)} visual(s); the tempo_kit model "
                    "takes exactly one video path per document"
                )
            key = _request_key(task, doc_id, context, videos, dict(gen_kwargs), self.setting)
            if key not in self._answered:
                self._answered[key] = self._answer(context, videos[0], dict(gen_kwargs))
                if self._journal is not None:
                    append_record(
                        self._journal,
                        {"key": key, "task": task, "doc_id": doc_id, "response": self._answered[key]},
                    )
            replies.append(self._answered[key])
        return replies

    def loglikelihood(self, requests):
        raise NotImplementedError(
            "the tempo_kit model generates answers only; use a generate_until task (the four long-video "
            "benchmarks are)"
        )

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("the tempo_kit model answers single-round questions only")
