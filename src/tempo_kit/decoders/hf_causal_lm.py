"""The ``hf_causal_lm`` decoder: any Hugging Face causal LM (Qwen3 first) driven by ``inputs_embeds``.

A thin wrapper in the open_clip ``hf_model`` spirit: it loads ``AutoModelForCausalLM`` and
``AutoTokenizer`` from a local directory, exposes the input embeddings for sequence assembly, the
HF loss for training and greedy generation (compatibility §4) for inference. ``.model`` stays the plain HF
model, so its parameter keys are ``decoder.model.model.*`` / ``decoder.model.lm_head.*`` inside a
:class:`~tempo_kit.model.TempoModel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tempo_kit.decoders.base import Decoder
from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS
from tempo_kit.hub import download_command
from tempo_kit.registry import DECODERS

#: Names accepted by ``dtype``; ``"auto"`` keeps the checkpoint's own dtype.
DTYPES = {
    "auto": "auto",
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


#: Files of which at least one must be present for a checkpoint folder to carry a tokenizer
#: (transformers otherwise builds an empty tokenizer without complaint).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def resolve_dtype(dtype: str | torch.dtype, where: str) -> str | torch.dtype:
    """Map a recipe's dtype name to a torch dtype (or ``"auto"``), with a clear error otherwise."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"{where}: unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def local_checkpoint_dir(pretrained: str | Path, where: str) -> Path:
    """The local directory of a Hugging Face checkpoint, or a :class:`CheckpointError` saying how to get one."""
    path = Path(pretrained).expanduser()
    if not path.is_dir():
        raise CheckpointError(
            f"{where}: pretrained={str(pretrained)!r} is not a local directory. The kit never downloads "
            f"weights: fetch hub checkpoints first, e.g. `{download_command('Qwen/Qwen3-4B')}`, "
            "and pass that directory as the path."
        )
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"{where}: {path} has no config.json, so it is not a Hugging Face checkpoint directory "
            "(expected config.json, *.safetensors and the tokenizer files)"
        )
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(
            f"{where}: {path} holds no tokenizer ({', '.join(TOKENIZER_FILES)}); save the model's tokenizer "
            "beside its weights, e.g. AutoTokenizer.from_pretrained(BASE).save_pretrained(PATH)"
        )
    return path


@DECODERS.register("hf_causal_lm")
class HFCausalLM(Decoder):
    """A Hugging Face ``AutoModelForCausalLM`` + ``AutoTokenizer`` loaded from a local directory.

    Args:
        pretrained: local checkpoint directory (config, weights, tokenizer). Hub names are not
            fetched: download them first and pass the directory.
        dtype: ``"auto"`` (the checkpoint's dtype), ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        attn_implementation: Hugging Face attention backend (``"sdpa"``, ``"eager"``,
            ``"flash_attention_2"``); ``None`` lets transformers choose.
        gradient_checkpointing: recompute decoder-layer activations in backward to save memory.
    """

    def __init__(
        self,
        pretrained: str | Path,
        dtype: str = "auto",
        attn_implementation: str | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        where = "decoder 'hf_causal_lm'"
        path = local_checkpoint_dir(pretrained, where)
        kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype, where)}
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        try:
            self.model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        except (OSError, ValueError) as error:
            raise CheckpointError(
                f"{where}: cannot load a causal LM and tokenizer from {path}: {error}"
            ) from error
        rows = int(self.model.get_input_embeddings().num_embeddings)
        if len(self.tokenizer) > rows:
            raise CheckpointError(
                f"{where}: the tokenizer in {path} has {len(self.tokenizer)} tokens but the model's embedding "
                f"table has {rows} rows; the tokenizer belongs to another model — save the LLM's own tokenizer there"
            )
        self.pretrained = str(path)
        self.hf_module_paths = {"model": ""}  # ``model`` is the checkpoint's whole HF model (peft adapters)
        self.hidden_size = int(self.model.get_input_embeddings().embedding_dim)
        if gradient_checkpointing:
            self.gradient_checkpointing_enable()

    # --- embeddings and forward -------------------------------------------------------------
    def embed(self, input_ids: Tensor) -> Tensor:
        """The LLM's own input embeddings of ``input_ids`` (text and time tags)."""
        embedding = self.model.get_input_embeddings()
        return embedding(input_ids.to(embedding.weight.device))

    def forward(self, inputs_embeds: Tensor, attention_mask: Tensor, labels: Tensor | None = None) -> Any:
        """HF forward: ``.logits`` ``[B, L, V]`` and, with labels, the HF shifted cross-entropy ``.loss``."""
        return self.model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, use_cache=False
        )

    @torch.no_grad()
    def generate(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        do_sample: bool = False,
        **generation_kwargs: Any,
    ) -> Tensor:
        """New token ids ``[B, N]`` only (the prompt is embeddings, so HF returns no prompt ids).

        Greedy by default (compatibility §4); prompts must be left-padded. Finished rows are filled with
        the pad id. Extra keyword arguments go to ``transformers`` ``generate``.
        """
        generation_config = self.model.generation_config
        eos = (
            generation_config.eos_token_id
            if generation_config.eos_token_id is not None
            else self.tokenizer.eos_token_id
        )
        pad = generation_config.pad_token_id
        if pad is None:
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        if isinstance(pad, (list, tuple)):
            pad = pad[0]
        kwargs: dict[str, Any] = {"eos_token_id": eos, "pad_token_id": pad}
        if not do_sample:  # silence sampling parameters a checkpoint's generation_config may carry
            kwargs.update(temperature=None, top_p=None, top_k=None)
        kwargs.update(generation_kwargs)
        return self.model.generate(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            **kwargs,
        )

    # --- training helpers ---------------------------------------------------------------------
    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Turn on HF activation checkpointing (non-reentrant by default, so frozen inputs work)."""
        kwargs = (
            {"use_reentrant": False}
            if gradient_checkpointing_kwargs is None
            else gradient_checkpointing_kwargs
        )
        if hasattr(self.model, "activation_checkpointing_enable"):  # transformers ≥ 5.2 name
            self.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.model.config.use_cache = False

    def gradient_checkpointing_disable(self) -> None:
        if hasattr(self.model, "activation_checkpointing_disable"):
            self.model.activation_checkpointing_disable()
        else:
            self.model.gradient_checkpointing_disable()

    @property
    def is_gradient_checkpointing(self) -> bool:
        for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
            if hasattr(type(self.model), name):
                return bool(getattr(self.model, name))
        return False

    @property
    def decoder_layer_classes(self) -> set[type[nn.Module]]:
        """Classes of the transformer blocks (e.g. ``Qwen3DecoderLayer``), for FSDP wrap and checkpoint policies."""
        names = set(getattr(self.model, "_no_split_modules", None) or [])
        return {type(m) for m in self.model.modules() if type(m).__name__ in names}

    # --- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path) -> None:
        """Write the model and tokenizer in the Hugging Face layout (loadable with ``pretrained=out_dir``)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(out))
        self.tokenizer.save_pretrained(str(out))
