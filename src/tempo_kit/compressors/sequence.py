"""Token ids of one SVLM input sequence, in Qwen3-VL's chat format (compatibility §2).

For a video segment the ids spell, exactly as ``Qwen3VLProcessor`` would after expanding the chat
template's video slot::

    <|im_start|>system\\n{system prompt}<|im_end|>\\n
    <|im_start|>user\\n
    <0.5 seconds><|vision_start|><|video_pad|> × (grid_h·grid_w/4)<|vision_end|>   one block per
    <1.5 seconds><|vision_start|><|video_pad|> × (grid_h·grid_w/4)<|vision_end|>   temporal patch
    …
    \\nQuery:\\n{query}<|im_end|>\\n
    <|im_start|>assistant\\n

An image (or the blank image of a text sample) takes Qwen3-VL's image slot instead:
``<|vision_start|><|image_pad|> × (grid_h·grid_w/4)<|vision_end|>``, without a time tag.
The memory tokens are not ids; the compressor appends their embeddings after these.
Untagged (``tagged=False``, Qwen2.5-VL, which tells time by positions), a video is one block,
``<|vision_start|><|video_pad|> × (grid_t·grid_h·grid_w/4)<|vision_end|>``, as its processor builds it.

Text between special tokens is tokenised as one piece (so the ids equal those of tokenising the
whole expanded string) with ``split_special_tokens=True``: a query that happens to contain
``<|video_pad|>`` stays plain text and cannot inject placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from tempo_kit.compressors.prompts import QUERY_PREFIX
from tempo_kit.errors import ConfigError
from tempo_kit.time_tags import TIME_TAG_TEMPLATE

VisualSlot = Literal["video", "image"]


class SequenceBuilder:
    """Builds SVLM input ids for (system prompt, visual block, query) with a given tokenizer."""

    def __init__(self, tokenizer, time_tag_template: str = TIME_TAG_TEMPLATE, tagged: bool = True) -> None:
        self.tokenizer = tokenizer
        self.time_tag_template = time_tag_template
        #: one time-tagged block per temporal patch (Qwen3-VL) or one untagged block per video (Qwen2.5-VL)
        self.tagged = tagged
        self.ids = special_token_ids(tokenizer, _SPECIALS, "Qwen-VL")
        self._encode = lru_cache(maxsize=4096)(self._encode_text)

    def _encode_text(self, text: str) -> tuple[int, ...]:
        return tuple(text_ids(self.tokenizer, text))

    @property
    def video_token_id(self) -> int:
        return self.ids["<|video_pad|>"]

    @property
    def image_token_id(self) -> int:
        return self.ids["<|image_pad|>"]

    def build(
        self,
        system_prompt: str,
        query: str,
        *,
        slot: VisualSlot,
        tokens_per_patch: int,
        patch_times: Sequence[float] | None = None,
    ) -> list[int]:
        """Ids of one sequence; ``patch_times`` (one per temporal patch) is needed for ``slot="video"``."""
        prefix = self.prefix(system_prompt, slot=slot, tokens_per_patch=tokens_per_patch, patch_times=patch_times)
        return prefix + self.suffix(query)

    def prefix(
        self,
        system_prompt: str,
        *,
        slot: VisualSlot,
        tokens_per_patch: int,
        patch_times: Sequence[float] | None = None,
    ) -> list[int]:
        """The question-independent head of a sequence: system turn, user turn up to ``<|vision_end|>``.

        It ends on a special token, so ``prefix + suffix(query)`` equals the ids of the whole
        sequence tokenised at once: a prefix computed once serves every question.
        """
        parts: list[str | int | tuple[int, int]] = [
            "<|im_start|>",
            "system\n" + system_prompt,
            "<|im_end|>",
            "\n",
            "<|im_start|>",
            "user\n",
        ]
        if slot == "video":
            if not patch_times:
                raise ValueError("a video slot needs one time per temporal patch")
            if not self.tagged:
                parts += ["<|vision_start|>", (self.video_token_id, tokens_per_patch * len(patch_times)), "<|vision_end|>"]
            for t in patch_times if self.tagged else ():
                parts += [self.time_tag_template.format(t=float(t)), "<|vision_start|>"]
                parts += [(self.video_token_id, tokens_per_patch), "<|vision_end|>"]
        elif slot == "image":
            parts += ["<|vision_start|>", (self.image_token_id, tokens_per_patch), "<|vision_end|>"]
        else:
            raise ValueError(f"unknown visual slot {slot!r}; use 'video' or 'image'")
        return self._assemble(parts)

    def suffix(self, query: str) -> list[int]:
        """The question part: ``\\nQuery:\\n{query}<|im_end|>\\n<|im_start|>assistant\\n``."""
        return self._assemble([QUERY_PREFIX + query, "<|im_end|>", "\n", "<|im_start|>", "assistant\n"])

    def _assemble(self, parts: list) -> list[int]:
        return assemble(parts, self.ids, self._encode)


def text_ids(tokenizer, text: str) -> list[int]:
    """Ids of plain text between special tokens: none added, and none read from the text
    (``split_special_tokens``), so a query spelling a placeholder cannot inject one."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def special_token_ids(tokenizer, names: Sequence[str], family: str, path=None) -> dict[str, int]:
    """``{name: id}`` of a family's special tokens, read when the adapter is built; a one-line
    :class:`~tempo_kit.errors.ConfigError` names those the tokenizer (of the checkpoint at ``path``) lacks."""
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in names}
    missing = [name for name, i in ids.items() if i is None or i == tokenizer.unk_token_id]
    if missing:
        where = "the SVLM tokenizer" if path is None else f"the tokenizer of {str(path)!r}"
        raise ConfigError(f"{where} lacks {family}'s {', '.join(missing)} token(s); is it a {family} checkpoint?")
    return {name: int(i) for name, i in ids.items()}


def check_placeholder(ids: dict[str, int], placeholder: str, config_id: int, path) -> None:
    """The checkpoint's tokenizer and config must agree on the visual ``placeholder`` the model
    fills with pixels (a mixed-up folder would put the pixels nowhere)."""
    if ids[placeholder] != config_id:
        raise ConfigError(
            f"tokenizer and config of {str(path)!r} disagree on {placeholder} ({ids[placeholder]} vs {config_id})"
        )


def assemble(parts: list, special_ids: dict[str, int], encode) -> list[int]:
    """Ids of ``parts``: special-token names (keys of ``special_ids``) as their ids, ``(id, n)`` as
    ``n`` copies, and the text between them joined and tokenised in one piece by ``encode``, as a
    tokenizer splits a whole string at its special tokens."""
    ids: list[int] = []
    text = ""
    for part in parts:
        if isinstance(part, str) and part not in special_ids:
            text += part
            continue
        if text:
            ids.extend(encode(text))
            text = ""
        if isinstance(part, tuple):
            ids.extend([part[0]] * part[1])
        else:
            ids.append(special_ids[part])
    if text:
        ids.extend(encode(text))
    return ids


_SPECIALS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|video_pad|>",
    "<|image_pad|>",
)
