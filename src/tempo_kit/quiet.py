"""Silence library chatter the kit itself triggers, and nothing else.

Lightning advertises its cloud products on every run, torch 2.13 deprecates a class Lightning 2.6
still checks against, and ``validate``/``test`` with ``--ckpt`` warn that the checkpointing callback
of the run that wrote the checkpoint is absent (the kit leaves it out on purpose: evaluation writes
no checkpoints). Each filter matches one known message and is active only inside
:func:`quiet_library_messages`, so real warnings still show.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

#: Lightning's advertisement lines (``rank_zero_info("💡 Tip: ...")``)
TIP_PREFIX = "💡 Tip:"

#: (message regex, category) pairs of warnings that say nothing about the user's run
KNOWN_NOISE: tuple[tuple[str, type[Warning]], ...] = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    (r"Be aware that when using `ckpt_path`, callbacks used to create the checkpoint", UserWarning),
    # the kit's data module does resume mid-epoch (its sampler position is in the checkpoint)
    (r"You're resuming from a checkpoint that ended before the epoch ended", UserWarning),
)

#: the loggers Lightning's ``rank_zero_info`` writes through
LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(TIP_PREFIX)


@contextlib.contextmanager
def quiet_library_messages() -> Iterator[None]:
    """Drop the known noise (above) while the block runs; everything else passes through."""
    tip_filter = _DropTips()
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(tip_filter)
    try:
        with warnings.catch_warnings():
            for message, category in KNOWN_NOISE:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(tip_filter)


def hide_library_progress() -> None:
    """``--no-progress``: also hide transformers' "Loading weights" / "Writing model shards" bars."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
