"""Time tags: the text that tells a model when something happened in the video.

One format serves both places the released Tempo writes one (compatibility §2, §4): Qwen3-VL's
processor tags each temporal patch of the SVLM's input with it, and Tempo tags each segment of the
global LLM's input with it (the paper writes ``<t=2.0s>``; the released weights read this one).
"""

from __future__ import annotations

from tempo_kit.errors import ConfigError

#: ``str.format`` template of a time tag, field ``t`` in seconds.
TIME_TAG_TEMPLATE = "<{t:.1f} seconds>"


def format_time_tag(seconds: float, template: str = TIME_TAG_TEMPLATE) -> str:
    """The tag of a moment ``seconds`` into the video."""
    return template.format(t=float(seconds))


def check_time_tag_template(template: str) -> None:
    """Refuse a template that does not format a time with field ``t``."""
    try:
        text = template.format(t=12.5)
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            f"time_tag_template {template!r} must be a str.format template with one field 't', "
            f"e.g. '<{{t:.1f}} seconds>': {error!r}"
        ) from None
    if text == template:
        raise ConfigError(
            f"time_tag_template {template!r} has no '{{t}}' field, so every tag would read the same"
        )
