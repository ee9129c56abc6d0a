"""How the global LLM decodes by default (compatibility §4): greedy, at most 1024 new tokens.

Torch-free, so the command-line parsers can show the defaults without loading a model.
"""

from tempo_kit.defaults import DEFAULT_MAX_NEW_TOKENS  # noqa: F401 (re-exported)

