"""Moved to :mod:`tempo_kit.hf_folder` (see :mod:`tempo_kit.moved`)."""

from tempo_kit.moved import moved_names

__getattr__ = moved_names(__name__)
