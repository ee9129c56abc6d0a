"""Training: the LightningModule, trainability (full / LoRA / frozen) and the fit/validate/test verbs."""
