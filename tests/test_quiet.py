"""quiet_library_messages drops only the known library noise, and only inside the block."""

from __future__ import annotations

import logging
import warnings

from tempo_kit.quiet import quiet_library_messages


def test_drops_lightning_tips_but_keeps_other_info(caplog):
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=log.name), quiet_library_messages():
        log.info("💡 Tip: try installing something")
        log.info("GPU available: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("💡 Tip: outside the block")
    assert len(caplog.records) == 1


def test_ignores_known_warnings_only():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_library_messages():
            warnings.warn(
                "`isinstance(treespec, LeafSpec)` is deprecated, use x", FutureWarning, stacklevel=1
            )
            warnings.warn(
                "Be aware that when using `ckpt_path`, callbacks used to create the checkpoint", stacklevel=1
            )
            warnings.warn("a real problem", UserWarning, stacklevel=1)
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use x", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "a real problem",
        "`isinstance(treespec, LeafSpec)` is deprecated, use x",
    ]
