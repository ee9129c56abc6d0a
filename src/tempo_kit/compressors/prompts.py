"""The compressor's prompts (paper Appendix E): the training prompt, the routing prompt, the query prefix.

They belong to the compressor: the global LLM never sees them.
"""

#: Paper Appendix E, the training-time compressor system prompt (P_std).
STANDARD_PROMPT = (
    "You are a query-conditioned visual compressor. Store in the provided memory tokens the minimal "
    "visual information needed to answer the Query. Ignore irrelevant details."
)

#: Paper Appendix E, the inference-time routing prompt (P_route): P_std plus the Yes/No instruction.
ROUTING_PROMPT = STANDARD_PROMPT + (
    " Now, before compressing, answer exactly 'Yes' or 'No': is this segment relevant to the Query?"
)

COMPRESSOR_PROMPTS = {"standard": STANDARD_PROMPT, "routing": ROUTING_PROMPT}

#: Text placed between the visual block and the query in the compressor's user turn (compatibility §2).
QUERY_PREFIX = "\nQuery:\n"
