"""Tiny real checkpoints (Qwen3-VL SVLM, Qwen3 LLM, tokenizer) written in the Hugging Face layout."""
