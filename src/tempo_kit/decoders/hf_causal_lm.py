"""The ``hf_causal_lm`` decoder: a Hugging Face causal LM of a supported family driven by ``inputs_embeds``.

The families (Qwen3, Qwen2.5, Llama/SmolLM2, Gemma 3, Mistral, Phi-3) are rows of
:mod:`tempo_kit.decoders.families`; a checkpoint of another architecture is refused before anything
is built. Its chat format and stop tokens come from its tokenizer (:mod:`tempo_kit.model.chat_formats`).

A thin wrapper in the open_clip ``hf_model`` spirit: it builds ``AutoModelForCausalLM`` from a local
directory's config (loading its weights unless built on the meta device) and its ``AutoTokenizer``, exposes the input embeddings for sequence assembly, the
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
from tempo_kit.decoders.families import family_of
from tempo_kit.dtypes import resolve_dtype
from tempo_kit.errors import CheckpointError
from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS
from tempo_kit.hf import (
    PACKING_ATTENTION,
    build_from_config,
    building_on_meta,
    initial_tensors,
    load_tensors,
    read_config,
    save_component_folder,
    set_activation_checkpointing,
)
from tempo_kit.hub import LLM_HUB_NAME, local_checkpoint
from tempo_kit.model.chat_formats import chat_format_of, stop_token_ids
from tempo_kit.registry import DECODERS


def declared_model_type(path: Path) -> str | None:
    """``model_type`` of ``path/config.json`` as written (read before transformers parses it)."""
    import json

    try:
        return json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None  # read_config then says what is wrong with the file


@DECODERS.register("hf_causal_lm")
class HFCausalLM(Decoder):
    """A Hugging Face ``AutoModelForCausalLM`` + ``AutoTokenizer`` loaded from a local directory.

    Args:
        pretrained: local checkpoint directory (config, weights, tokenizer). Hub names are not
            fetched: download them first and pass the directory.
        dtype: ``"auto"`` (the checkpoint config's dtype) or any name :mod:`tempo_kit.dtypes`
            accepts (``bf16``, ``bfloat16``, ``torch.bfloat16``, ``float32`` …).
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
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        where = "decoder 'hf_causal_lm'"
        path = local_checkpoint(pretrained, where, need_tokenizer=True, example_hub=LLM_HUB_NAME)
        self.family = family_of(declared_model_type(path), f"{where}: {path / 'config.json'}")
        config = read_config(path, where)
        dtype = resolve_dtype(dtype, f"{where}: dtype")
        try:
            self.model = build_from_config(AutoModelForCausalLM.from_config, config, dtype, attn_implementation, where)
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            if (path / "generation_config.json").is_file():  # as from_pretrained reads it
                self.model.generation_config = GenerationConfig.from_pretrained(str(path))
        except (OSError, ValueError) as error:
            reason = " ".join(str(error).split())[:300]
            raise CheckpointError(f"{where}: cannot build a causal LM and tokenizer from {path}: {reason}") from None
        self.chat_format = chat_format_of(self.tokenizer)  # refused here, not at the first prompt
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
        if not building_on_meta():  # on the meta device the structure is all there is
            load_tensors(self, self.initial_state_dict(), f"{where} built from {path}")

    # --- weights ----------------------------------------------------------------------------------
    def initial_state_dict(self) -> dict[str, Tensor]:
        """The LLM's tensors, read once from ``pretrained`` (tied weights are stored once there)."""
        return initial_tensors(self, Path(self.pretrained))[0]

    # --- embeddings and forward -------------------------------------------------------------
    def embed(self, input_ids: Tensor) -> Tensor:
        """The LLM's own input embeddings of ``input_ids`` (text and time tags)."""
        embedding = self.model.get_input_embeddings()
        return embedding(input_ids.to(embedding.weight.device))

    def forward(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None,
        labels: Tensor | None = None,
        position_ids: Tensor | None = None,
    ) -> Any:
        """HF forward: ``.logits`` ``[B, L, V]`` and, with labels, the HF shifted cross-entropy ``.loss``.

        With ``position_ids`` and no mask, transformers reads packed rows (restarting positions)
        as separate sequences.
        """
        return self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            labels=labels,
            position_ids=position_ids,
            use_cache=False,
        )

    def packing_problem(self) -> str | None:
        """transformers builds packed rows' masks for these attention implementations only."""
        implementation = getattr(self.model.config, "_attn_implementation", None) or "eager"
        if implementation in PACKING_ATTENTION:
            return None
        return (
            f"attention implementation {implementation!r} cannot attend within packed rows; "
            f"use one of {', '.join(sorted(PACKING_ATTENTION))} or set train_pack_tokens: null"
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

        Greedy by default (compatibility §4); prompts must be left-padded. Generation stops at the
        checkpoint's end-of-sequence ids and the chat format's end-of-turn token (a base checkpoint's
        generation config may name only ``</s>``). Finished rows are filled with the pad id. Extra keyword arguments go to ``transformers`` ``generate``.
        """
        generation_config = self.model.generation_config
        configured = generation_config.eos_token_id
        configured = list(configured) if isinstance(configured, (list, tuple)) else [configured]
        eos = list(dict.fromkeys(int(i) for i in [*configured, *stop_token_ids(self.tokenizer)] if i is not None))
        pad = generation_config.pad_token_id
        if pad is None:
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos[0]
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
        set_activation_checkpointing(self.model, True, gradient_checkpointing_kwargs)
        self.model.config.use_cache = False

    def gradient_checkpointing_disable(self) -> None:
        set_activation_checkpointing(self.model, False)

    @property
    def is_gradient_checkpointing(self) -> bool:
        for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
            if hasattr(type(self.model), name):
                return bool(getattr(self.model, name))
        return False

    @property
    def lora_target_modules(self) -> list[str]:
        """The family's attention and MLP projections (what ``lora.decoder.target_modules: family`` means)."""
        return list(self.family.lora_targets)

    @property
    def decoder_layer_classes(self) -> set[type[nn.Module]]:
        """Classes of the transformer blocks (e.g. ``Qwen3DecoderLayer``), for FSDP wrap and checkpoint policies."""
        names = set(getattr(self.model, "_no_split_modules", None) or [])
        return {type(m) for m in self.model.modules() if type(m).__name__ in names}

    # --- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path) -> None:
        """Write the model and tokenizer in the Hugging Face layout (loadable with ``pretrained=out_dir``).

        Tensors still equal to ``pretrained``'s are written in that checkpoint's dtype (a frozen LLM
        is stored as it came); the configs, tokenizer and generation config are ``pretrained``'s.
        """
        save_component_folder(self, Path(self.pretrained), Path(out_dir))
