"""A :class:`Question`: every setting of one answer, resolved once, before any video is decoded.

``infer``, ``chat``, ``demo``, ``eval``, the lmms-eval model and :class:`TempoPipeline.answer
<tempo_kit.inference.api.TempoPipeline.answer>` all build their questions with
:func:`resolve_question`, the one place where defaults are filled from the model's config, values
are checked, prompt names are mapped to their text and unknown keywords are refused with a
did-you-mean. Every memory source (:mod:`tempo_kit.inference.sources`) and the model's ``generate``
read the record; none of them re-decides a setting, so a setting cannot be dropped on one path.

Torch-free: the command-line verbs resolve their questions before loading a model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from tempo_kit.compressors.prompts import compressor_prompt_text
from tempo_kit.errors import ConfigError, check_choice, did_you_mean
from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS
from tempo_kit.inference.defaults import RELEVANCE_SOURCES

if TYPE_CHECKING:
    from tempo_kit.model.prompts import Turn
from tempo_kit.video.reading import Sampling

#: Longest query (and compressor query) in characters. Every character is at least a fraction of
#: an LLM token and the SVLM reads the query once per segment, so a longer text cannot fit the
#: released 16384-token context and would only run the compressor for minutes before failing.
MAX_QUERY_CHARS = 16384

#: Keywords of :func:`resolve_question` besides the sampling fields and the LLM's generation keys.
QUESTION_KEYS = (
    "compressor_query",
    "sampling",
    "budget",
    "k_min",
    "allocator",
    "reduction",
    "relevance",
    "relevance_prompt",
    "max_context",
    "max_new_tokens",
    "history",
)


@dataclass(frozen=True)
class Question:
    """One question about one video with every setting its answer depends on.

    Attributes:
        query: the question the LLM answers.
        compressor_query: the text the SVLM is conditioned on (``query`` unless given).
        sampling: how the video is read, the model's frame geometry filled in.
        allocator: the allocator's registry spec with its arguments.
        budget: visual tokens for the whole video.
        k_min: anchor tokens per segment.
        reduction: the intra-segment reduction's spec (name and arguments).
        relevance: ``"trained"`` (the model's SVLM) or ``"base"`` (a base SVLM's prior).
        relevance_prompt: the prompt name (or text) as asked for; ``None``: the model's default.
        system_prompt: the system-prompt text of the model's own compressor calls; ``None``: the
            compressor's own inference prompt (with ``relevance="trained"`` the relevance prompt
            is the memory's prompt too: one forward pass gives both).
        relevance_system_prompt: the system-prompt text the relevance is scored under.
        max_context: the LLM context cap (the model config's unless given).
        max_new_tokens: greedy decoding limit.
        generation: further keyword arguments of the LLM's ``generate`` (checked names).
        history: the conversation before ``query``, as decoder chat turns (user, assistant, …);
            the video goes in its first user turn. Empty for a single question.
    """

    query: str
    compressor_query: str
    sampling: Sampling
    allocator: dict[str, Any]
    budget: int
    k_min: int
    reduction: dict[str, Any]
    relevance: str
    relevance_prompt: str | None
    system_prompt: str | None
    relevance_system_prompt: str | None
    max_context: int
    max_new_tokens: int
    generation: dict[str, Any] = field(default_factory=dict)
    history: tuple[Turn, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, the sampling fields at the top level (what ``result.settings`` holds)."""
        out = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "sampling"}
        out["relevance_prompt"] = self.relevance_prompt or "model default"
        out["history"] = [{"role": t.role, "text": t.text} for t in self.history]
        return {**out, **self.sampling.to_dict()}


def resolve_question(
    config: Any,
    query: str,
    *,
    compressor_query: str | None = None,
    sampling: Sampling | Mapping[str, Any] | None = None,
    budget: int | None = None,
    k_min: int | None = None,
    allocator: str | Mapping[str, Any] | None = None,
    reduction: str | Mapping[str, Any] | None = None,
    relevance: str = "trained",
    relevance_prompt: str | None = None,
    max_context: int | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    history: Sequence[Turn] | None = None,
    **options: Any,
) -> Question:
    """The :class:`Question` ``query`` and the caller's keywords make on a model of ``config``.

    ``config`` is the model's :class:`~tempo_kit.model.config.TempoConfig`; ``options`` are
    :class:`~tempo_kit.video.reading.Sampling` fields and keyword arguments of the LLM's
    ``generate`` (``do_sample``, ``temperature``, …). Anything else is refused here, with the
    closest known keyword, before a frame is decoded.
    """
    from tempo_kit.model.config import check_model_settings

    check_query(query, "query")
    if compressor_query is not None:
        check_query(compressor_query, "compressor_query")
    sampling_values = {key: options.pop(key) for key in Sampling.names() if key in options}
    generation = _generation_options(options)
    resolved_sampling = resolve_sampling(config, sampling, sampling_values)
    check_choice(relevance, RELEVANCE_SOURCES, "relevance")
    budget = config.budget if budget is None else budget
    k_min = config.k_min if k_min is None else k_min
    max_context = config.max_context if max_context is None else max_context
    check_model_settings({"budget": budget, "k_min": k_min, "max_context": max_context}, "")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens={max_new_tokens!r} must be a positive number of tokens (released: 1024)")
    prompt_text = None if relevance_prompt is None else compressor_prompt_text(relevance_prompt, "relevance_prompt")
    return Question(
        query=query,
        compressor_query=query if compressor_query is None else compressor_query,
        sampling=resolved_sampling,
        allocator=_checked_spec("allocator", config.allocator if allocator is None else allocator),
        budget=budget,
        k_min=k_min,
        reduction=_checked_spec("reduction", config.reduction if reduction is None else reduction),
        relevance=relevance,
        relevance_prompt=relevance_prompt,
        system_prompt=prompt_text if relevance == "trained" else None,
        relevance_system_prompt=prompt_text,
        max_context=max_context,
        max_new_tokens=max_new_tokens,
        generation=generation,
        history=check_history(history),
    )


def resolve_sampling(config: Any, sampling: Sampling | Mapping[str, Any] | None, values: Mapping[str, Any]) -> Sampling:
    """How a video is read: ``sampling`` (a record or mapping) and ``values`` on the inference
    defaults, checked, with the model's own ``preprocessing`` when none is chosen."""
    base = sampling if isinstance(sampling, Sampling) else Sampling.inference().updated(sampling or {})
    return base.updated(values).with_preprocessing(config.preprocessing)


def check_query(text: Any, key: str) -> None:
    """A non-empty string no longer than :data:`MAX_QUERY_CHARS`."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{key} is empty; pass the question to answer")
    if len(text) > MAX_QUERY_CHARS:
        raise ConfigError(
            f"{key} has {len(text)} characters, over the limit of {MAX_QUERY_CHARS} "
            "(it could not fit the LLM's context); shorten it"
        )


def check_history(history: Sequence[Turn] | None) -> tuple[Turn, ...]:
    """Earlier turns alternating user, assistant, …, ending with an assistant turn (the question
    is the next user turn), each a :class:`~tempo_kit.model.prompts.Turn` with text."""
    turns = tuple(history or ())
    if turns:
        from tempo_kit.model.prompts import Turn  # torch is loaded by then: a history comes with a model
    for index, turn in enumerate(turns):
        role = ("user", "assistant")[index % 2]
        if not isinstance(turn, Turn) or turn.role != role or not isinstance(turn.text, str):
            raise ConfigError(
                f"history[{index}]={turn!r} must be Turn({role!r}, text): earlier turns alternate user and "
                "assistant, starting with the user"
            )
    if len(turns) % 2:
        raise ConfigError("history ends with a user turn; it must end with the assistant's reply (the question follows)")
    return turns


def _checked_spec(kind: str, value: Any) -> dict[str, Any]:
    """A registry spec ``{"name": ..., **arguments}`` whose name and arguments the registry knows."""
    from tempo_kit.registry import ALLOCATORS, REDUCTIONS, RegistryError, check_spec

    if isinstance(value, str):
        spec = {"name": value}
    elif isinstance(value, Mapping) and isinstance(value.get("name"), str):
        spec = copy.deepcopy(dict(value))
    else:
        raise ConfigError(f"{kind}={value!r} must be a registry name or a spec {{name: ..., key: value}}")
    if kind == "allocator":
        check_spec(ALLOCATORS, spec, kind)
    else:  # a reduction is a function of the memory: only its name can be checked before use
        try:
            REDUCTIONS.get(spec["name"])
        except RegistryError as error:
            raise ConfigError(f"{kind}: {error}") from None
    return spec


def _generation_options(options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments left for the LLM's ``generate``: names ``GenerationConfig`` knows."""
    if not options:
        return {}
    from transformers import GenerationConfig

    known = set(GenerationConfig().to_dict())
    for key in options:
        if key not in known:
            choices = [*QUESTION_KEYS, *Sampling.names(), *sorted(known)]
            raise ConfigError(
                f"unknown keyword {key}={options[key]!r}{did_you_mean(key, choices)}; a question takes "
                f"{', '.join(QUESTION_KEYS)}, the sampling fields ({', '.join(Sampling.names())}) and the "
                "LLM's generation settings (transformers.GenerationConfig)"
            )
    return dict(options)
