"""An OpenAI chat-completions request body → one checked :class:`ChatRequest`, before any work.

The video comes as a ``video_url`` content part (the form vLLM and SGLang accept); Tempo's options
(``budget``, ``allocator``, ``max_frames``, …) come as extra top-level body fields, which the
``openai`` client sends with ``extra_body=``. Every check here runs before the video is read, so a
bad request costs nothing and is answered with a 4xx naming the field and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tempo_kit.errors import ConfigError, TempoKitError, did_you_mean
from tempo_kit.inference.question import QUESTION_KEYS as ASKED_KEYS
from tempo_kit.model.prompts import Turn, compressor_query
from tempo_kit.video.reading import Sampling


class RequestError(TempoKitError):
    """A request the server refuses: ``status`` is the HTTP status it is answered with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


#: Tempo's per-question options a body may carry: the question's settings
#: (:data:`~tempo_kit.inference.question.QUESTION_KEYS`) but those the server itself decides
#: (the compressor's query and the earlier turns come from the messages, the sampling from the
#: fields below).
QUESTION_KEYS = tuple(key for key in ASKED_KEYS if key not in ("compressor_query", "history", "sampling"))
#: Options that say how the video is read: part of the video cache's key.
READING_KEYS = Sampling.names()
#: OpenAI fields that are accepted and ignored: decoding is greedy (compatibility §4), one choice.
IGNORED_OPENAI_KEYS = frozenset(
    {"temperature", "top_p", "user", "seed", "stream_options", "presence_penalty", "frequency_penalty",
     "logit_bias", "metadata", "store", "service_tier", "parallel_tool_calls", "n"}
)
#: Roles a message may have besides system/developer (ignored: the decoder's system prompt is the model's own).
ROLES = ("user", "assistant")


@dataclass
class ChatRequest:
    """One checked question: the video's URL, the conversation, and the options to answer with.

    ``history`` holds the earlier turns (user, assistant, …): the decoder reads them as chat turns
    before the question (:attr:`~tempo_kit.inference.question.Question.history`), as ``chat`` does.
    """

    video_url: str
    question: str
    history: list[Turn] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    reading: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    model: str = ""

    @property
    def compressor_query(self) -> str | None:
        """What the SVLM is conditioned on: all user turns in the released multi-turn form
        (``Context turn i: …``, :func:`~tempo_kit.model.prompts.compressor_query`), or ``None``
        (the question itself) for a single question."""
        users = [t for t in self.history if t.role == "user"]
        return compressor_query([*users, Turn("user", self.question)]) if users else None


def parse_chat_request(body: Any, model_id: str, max_new_tokens_cap: int) -> ChatRequest:
    """Check a decoded JSON body; a :class:`RequestError` (400) names the first problem."""
    if not isinstance(body, Mapping):
        raise RequestError(400, "the request body must be a JSON object with 'messages'")
    known = {"model", "messages", "stream", "max_tokens", "max_completion_tokens", *QUESTION_KEYS, *READING_KEYS}
    for key in body:
        if key not in known and key not in IGNORED_OPENAI_KEYS:
            raise RequestError(
                400, f"unknown field {key!r}{did_you_mean(key, sorted(known))}; Tempo's options are "
                f"{', '.join(QUESTION_KEYS)} and the sampling fields {', '.join(READING_KEYS)}"
            )
    if body.get("n", 1) != 1:
        raise RequestError(400, f"n={body['n']!r}: the server answers with one choice; leave n out or pass 1")
    model = body.get("model")
    if model is not None and model != model_id:
        raise RequestError(404, f"model {model!r} is not served here; this server serves {model_id!r}")
    video_url, history, question = parse_messages(body.get("messages"))
    options = {key: body[key] for key in QUESTION_KEYS if body.get(key) is not None}
    for alias in ("max_tokens", "max_completion_tokens"):  # OpenAI's names for the answer's length
        if body.get(alias) is not None:
            options["max_new_tokens"] = body[alias]
    check_options(options, max_new_tokens_cap)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, f"stream={stream!r} must be true or false")
    reading = {key: body[key] for key in READING_KEYS if body.get(key) is not None}
    return ChatRequest(video_url, question, history, options, reading, stream, model_id)


def parse_messages(messages: Any) -> tuple[str, list[Turn], str]:
    """(the one video URL, earlier user/assistant turns, the last user message's text)."""
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content} objects")
    videos: list[str] = []
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping) or "role" not in message:
            raise RequestError(400, f"{where} must be an object with 'role' and 'content'")
        role = message["role"]
        if role in ("system", "developer"):
            continue  # the decoder's system prompt is the model's own (compatibility §4)
        if role not in ROLES:
            raise RequestError(400, f"{where}.role={role!r}: use user, assistant or system")
        text, found = parse_content(message.get("content"), where)
        if found and role != "user":
            raise RequestError(400, f"{where}: only a user message may carry the video")
        videos += found
        turns.append(Turn(role, text))
    if not videos:
        raise RequestError(
            400, "no video in the messages; add a content part "
            '{"type": "video_url", "video_url": {"url": "file:///…" | "data:video/mp4;base64,…"}}'
        )
    if len(videos) > 1:
        raise RequestError(400, f"{len(videos)} videos in the messages; a conversation is about one video, send one")
    if turns[-1].role != "user" or not turns[-1].text.strip():
        raise RequestError(400, "the last message must be a user message with the question's text")
    for index, turn in enumerate(turns):
        if turn.role != ROLES[index % 2]:
            raise RequestError(
                400, f"message {index + 1} (not counting system messages) is a {turn.role} turn after a "
                f"{turns[index - 1].role} turn; user and assistant turns must alternate, starting with the user"
            )
    return videos[0], turns[:-1], turns[-1].text.strip()


def parse_content(content: Any, where: str) -> tuple[str, list[str]]:
    """A message's text and the video URLs among its content parts."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise RequestError(400, f"{where}.content must be a string or a list of content parts")
    texts, videos = [], []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "video_url":
            url = part.get("video_url")
            url = url.get("url") if isinstance(url, Mapping) else url
            if not isinstance(url, str) or not url:
                raise RequestError(400, f"{where}.content[{j}].video_url needs a 'url' string")
            videos.append(url)
        else:
            raise RequestError(
                400, f"{where}.content[{j}]: type {kind!r} is not served; send 'text' and one 'video_url' part"
            )
    return "\n".join(texts), videos


def check_options(options: dict[str, Any], max_new_tokens_cap: int) -> None:
    """Types and ranges of Tempo's options, and allocator/reduction names, before any work."""
    from tempo_kit.registry import ALLOCATORS, REDUCTIONS, check_spec

    for key, low in (("budget", 1), ("k_min", 0), ("max_context", 1), ("max_new_tokens", 1)):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise RequestError(400, f"{key}={value!r} must be an integer ≥ {low}")
    if options.get("max_new_tokens", 0) > max_new_tokens_cap:
        raise RequestError(
            400, f"max_new_tokens={options['max_new_tokens']} is over this server's cap of {max_new_tokens_cap}"
        )
    try:
        if "allocator" in options:
            spec = options["allocator"]
            if not isinstance(spec, (str, Mapping)) or (isinstance(spec, Mapping) and "name" not in spec):
                raise ConfigError(f"allocator={spec!r} must be a name (ata, uniform, …) or {{name: …, …}}")
            check_spec(ALLOCATORS, {"name": spec} if isinstance(spec, str) else dict(spec), "allocator")
        if "reduction" in options:
            check_spec(REDUCTIONS, {"name": options["reduction"]}, "reduction")
    except TempoKitError as error:
        raise RequestError(400, str(error)) from None
    prompt = options.get("relevance_prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise RequestError(400, f"relevance_prompt={prompt!r} must be a string")
