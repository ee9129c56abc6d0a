"""Checkpoint conversion between the released Tempo layout and the kit format."""
