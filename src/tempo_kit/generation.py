"""How the global LLM decodes by default (compatibility §4): greedy, at most 1024 new tokens.

Torch-free, so the command-line parsers can show the defaults without loading a model.
"""

#: Most new tokens the LLM writes per answer (the released scripts' ``max_new_tokens``).
DEFAULT_MAX_NEW_TOKENS = 1024
