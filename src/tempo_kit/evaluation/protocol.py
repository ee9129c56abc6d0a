"""How the released Tempo was evaluated (compatibility §7): the settings both evaluation routes use.

The released evaluation scripts differ from the inference script in two places: they sample at
least 8 frames (inference: 4) and cap the LLM context at 32768 tokens (inference: 16384). Both the
kit's harness (``tempo-kit eval``, as its switches' defaults) and the lmms-eval model
(``--model tempo_kit``) read them from here, so the two routes ask the model the same way. The
frame-count default lives with every other sampling default in
:class:`~tempo_kit.video.reading.Sampling` (``Sampling.evaluation``).
"""

from __future__ import annotations

from tempo_kit.defaults import EVAL_MAX_CONTEXT  # noqa: F401 (re-exported)


