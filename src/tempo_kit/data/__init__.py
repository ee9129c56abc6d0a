"""Annotation datasets, collation, the DataModule and synthetic needle videos."""
