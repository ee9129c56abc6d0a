"""The compressor's prompts (paper Appendix E): the training prompt, the routing prompt, the query prefix.

They belong to the compressor: the global LLM never sees them.
"""

from tempo_kit.errors import ConfigError

#: Paper Appendix E, the training-time compressor system prompt (P_std).
STANDARD_PROMPT = (
    "You are a query-conditioned visual compressor. Store in the provided memory tokens the minimal "
    "visual information needed to answer the Query. Ignore irrelevant details."
)

#: Paper Appendix E, the inference-time routing prompt (P_route): P_std plus the Yes/No instruction.
ROUTING_PROMPT = STANDARD_PROMPT + (
    " Now, before compressing, answer exactly 'Yes' or 'No': is this segment relevant to the Query?"
)

#: Qwen-VL's own default system prompt: the paper's "Base Model Prior (Standard prompt)" row
#: scored relevance under it (Appendix E.3).
QWEN_DEFAULT_PROMPT = "You are a helpful assistant."

#: The one table of compressor system-prompt names; any other text is a literal system prompt.
COMPRESSOR_PROMPTS = {"standard": STANDARD_PROMPT, "routing": ROUTING_PROMPT, "qwen_default": QWEN_DEFAULT_PROMPT}

#: Text placed between the visual block and the query in the compressor's user turn (compatibility §2).
QUERY_PREFIX = "\nQuery:\n"


def compressor_prompt_text(prompt: str, key: str = "prompt") -> str:
    """The text of a prompt name from :data:`COMPRESSOR_PROMPTS`, or ``prompt`` itself (literal text)."""
    if not isinstance(prompt, str) or not prompt.strip():
        names = ", ".join(COMPRESSOR_PROMPTS)
        raise ConfigError(f"{key}={prompt!r} must be one of {names} or a literal system prompt")
    return COMPRESSOR_PROMPTS.get(prompt, prompt)
