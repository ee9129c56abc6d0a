"""Analytic FLOP counts of Tempo's parts, and model FLOP utilisation (MFU).

Why analytic: a benchmark must report how much of the accelerator's peak it uses, and that needs
the work a step *must* do, independent of kernels, recomputation or padding. Every count here
comes from the Hugging Face configs and the real sequence lengths of a step:

* the Qwen3-VL vision tower (patch embedding, blocks whose attention stays inside each temporal
  patch of a segment, the patch merger and the DeepStack mergers),
* the SVLM language model over each segment's compressor sequence
  (text + visual tokens + ``k_max`` memory tokens; no LM head: the compressor drops it),
* the projector over every memory token that reaches the LLM,
* the LLM over the assembled sequence, LM head included (training computes logits everywhere).

Conventions (those of PaLM / Megatron / torchtitan and of ``torch.utils.flop_counter``):

* a multiply-add is 2 FLOPs; only matrix products count (norms, activations, softmax, rotary
  and elementwise adds are a fraction of a percent at these widths and are left out);
* attention counts the full ``s × s`` score and value products, also under a causal mask
  (``causal="half"`` counts only the lower triangle, the work a causal flash kernel does);
* a backward pass costs twice its forward (gradients of inputs and of weights), a part whose
  input needs no gradient (the patch embedding of pixels) once, a frozen part with nothing
  trainable upstream nothing at all;
* activation recomputation is not counted: MFU measures useful model work (recomputation is
  hardware FLOP utilisation, a different number).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tempo_kit.errors import ConfigError

Causal = Literal["full", "half"]

#: Dense (no sparsity) bf16 tensor-core peak, FLOP/s, from NVIDIA's data sheets.
PEAK_BF16_DENSE_FLOPS: dict[str, float] = {
    "H100-SXM": 989.4e12,  # H100 SXM5 80 GB: 1979 TFLOP/s with 2:4 sparsity, half of it dense
    "H100-NVL": 835.0e12,
    "H100-PCIe": 756.0e12,
    "H200": 989.4e12,  # same GH100 compute as H100 SXM, more and faster memory
    "A100": 312.0e12,
}

#: Substrings of ``torch.cuda.get_device_name()`` → key of :data:`PEAK_BF16_DENSE_FLOPS`
#: (first match wins, so the specific names come first).
DEVICE_NAME_KEYS: tuple[tuple[str, str], ...] = (
    ("H200", "H200"),
    ("H100 NVL", "H100-NVL"),
    ("H100 PCIe", "H100-PCIe"),
    ("H100", "H100-SXM"),
    ("A100", "A100"),
)


def peak_flops_for(device_name: str) -> float | None:
    """Peak bf16 dense FLOP/s of a GPU named as ``torch.cuda.get_device_name()`` reports it."""
    for needle, key in DEVICE_NAME_KEYS:
        if needle.lower() in device_name.lower():
            return PEAK_BF16_DENSE_FLOPS[key]
    return None


def mfu(flops_per_step: float, step_seconds: float, peak_flops: float) -> float:
    """Model FLOP utilisation: useful FLOP/s achieved over the device's peak (0..1)."""
    if step_seconds <= 0 or peak_flops <= 0:
        raise ConfigError(
            f"mfu needs a positive step time and peak, got step_seconds={step_seconds}, peak_flops={peak_flops}"
        )
    return flops_per_step / step_seconds / peak_flops


def _optional(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


def _get(config: Any, key: str) -> Any:
    value = _optional(config, key)
    if value is None:
        raise ConfigError(f"FLOP count: the config has no {key!r}; pass a Hugging Face config of this model")
    return value


def _attention_pairs(length: int, causal: Causal, past: int = 0) -> float:
    """Query-key pairs of one sequence: ``s²`` or the causal triangle ``s(s+1)/2``.

    ``past`` cached tokens before it (a key/value cache) add ``s·past`` pairs in both conventions.
    """
    if causal == "full":
        return float(length) * (length + past)
    if causal == "half":
        return length * (length + 1) / 2 + float(length) * past
    raise ConfigError(f"causal must be 'full' or 'half', got {causal!r}")


# ---------------------------------------------------------------------------------- vision
def vision_tower_flops(vision_config: Any, grid_thw: Iterable[Sequence[int]]) -> dict[str, float]:
    """Forward FLOPs of the Qwen3-VL vision tower for inputs of patch grids ``(t, h, w)``.

    Attention is bidirectional inside each temporal patch (``h·w`` patches), as Qwen3-VL's
    ``cu_seqlens`` splits it. Returns ``{"patch_embed": …, "blocks": …, "mergers": …}``.
    """
    hidden = int(_get(vision_config, "hidden_size"))
    mlp = int(_get(vision_config, "intermediate_size"))
    depth = int(_get(vision_config, "depth"))
    out = int(_get(vision_config, "out_hidden_size"))
    merge = int(_get(vision_config, "spatial_merge_size"))
    kernel = int(_get(vision_config, "in_channels")) * int(_get(vision_config, "temporal_patch_size"))
    kernel *= int(_get(vision_config, "patch_size")) ** 2
    deepstack = len(_get(vision_config, "deepstack_visual_indexes"))

    patches = 0
    pairs = 0.0
    for t, h, w in grid_thw:
        window = int(h) * int(w)
        patches += int(t) * window
        pairs += int(t) * float(window) * window
    per_patch_linear = 2 * (hidden * 3 * hidden + hidden * hidden + 2 * hidden * mlp)  # qkv, proj, fc1, fc2
    blocks = depth * (patches * per_patch_linear + 4 * pairs * hidden)  # + scores and values
    merged = patches // merge**2
    wide = hidden * merge**2
    one_merger = 2 * merged * (wide * wide + wide * out)
    return {
        "patch_embed": 2.0 * patches * kernel * hidden,
        "blocks": float(blocks),
        "mergers": float((1 + deepstack) * one_merger),
    }


# ---------------------------------------------------------------------------------- decoders
def decoder_flops(
    text_config: Any,
    lengths: Iterable[int],
    *,
    lm_head: bool,
    causal: Causal = "full",
    past_lengths: Iterable[int] | None = None,
) -> dict[str, float]:
    """Forward FLOPs of a Qwen3-style decoder (GQA attention, SwiGLU MLP) over sequences of ``lengths``.

    Works for ``Qwen3Config`` and Qwen3-VL's ``text_config``. ``lm_head`` adds the vocabulary
    projection at every position (training logits). ``past_lengths`` (one per sequence) are
    tokens already in a key/value cache: attended to, not recomputed. Returns
    ``{"layers": …, "lm_head": …}``.
    """
    d = int(_get(text_config, "hidden_size"))
    ffn = int(_get(text_config, "intermediate_size"))
    layers = int(_get(text_config, "num_hidden_layers"))
    heads = int(_get(text_config, "num_attention_heads"))
    kv_heads = int(_get(text_config, "num_key_value_heads"))
    head_dim = int(_optional(text_config, "head_dim") or d // heads)
    vocab = int(_get(text_config, "vocab_size"))

    q, kv = heads * head_dim, kv_heads * head_dim
    per_token = 2 * (d * q + 2 * d * kv + q * d + 3 * d * ffn)  # q, k, v, o; gate, up, down
    lengths = [int(n) for n in lengths]
    past = [0] * len(lengths) if past_lengths is None else [int(n) for n in past_lengths]
    if len(past) != len(lengths):
        raise ConfigError(f"decoder_flops: {len(past)} past_lengths for {len(lengths)} sequences; give one each")
    tokens = sum(lengths)
    pairs = sum(_attention_pairs(n, causal, p) for n, p in zip(lengths, past))
    body = layers * (tokens * per_token + 4 * pairs * q)
    return {"layers": float(body), "lm_head": 2.0 * tokens * d * vocab if lm_head else 0.0}


def projector_flops(in_features: int, out_features: int, tokens: int, hidden: Sequence[int] = ()) -> float:
    """Forward FLOPs of a linear / MLP projector (layer widths ``in → *hidden → out``) on ``tokens``."""
    widths = [int(in_features), *map(int, hidden), int(out_features)]
    return 2.0 * tokens * sum(a * b for a, b in zip(widths, widths[1:]))


# ---------------------------------------------------------------------------------- a step
@dataclass
class StepFlops:
    """Forward FLOPs of one Tempo step, per part.

    Attributes:
        vision_patch_embed: the vision tower's patch embedding (its input, pixels, needs no grad).
        vision: the rest of the vision tower (blocks and mergers).
        svlm: the SVLM language model over the compressor sequences.
        projector: the projector over the memory tokens that reach the LLM.
        llm: the LLM over the assembled sequences, LM head included.
    """

    vision_patch_embed: float = 0.0
    vision: float = 0.0
    svlm: float = 0.0
    projector: float = 0.0
    llm: float = 0.0

    @property
    def forward(self) -> float:
        return self.vision_patch_embed + self.vision + self.svlm + self.projector + self.llm

    def training(self, trainable: Mapping[str, bool | str] | None = None) -> float:
        """Forward + backward FLOPs of a step in which the parts in ``trainable`` learn (default: all).

        Keys: ``vision``, ``svlm`` (the SVLM language model), ``projector``, ``llm``. Values:
        ``True`` / ``"full"`` (weights learn: 3× the forward), ``"input_grad"`` (weights frozen,
        gradients pass through to something upstream, e.g. memory tokens or LoRA adapters: 2×;
        adapters' own small products are not counted), ``False`` / ``"frozen"`` (2× if something
        upstream learns, else 1×). The patch embedding's backward has no input gradient.
        """
        modes: dict[str, str] = dict.fromkeys(("vision", "svlm", "projector", "llm"), "full")
        for part, value in (trainable or {}).items():
            if part not in modes:
                raise ConfigError(f"StepFlops.training: unknown part {part!r}; use one of {sorted(modes)}")
            mode = {True: "full", False: "frozen"}.get(value, value) if isinstance(value, bool) else value
            if mode not in ("full", "input_grad", "frozen"):
                raise ConfigError(
                    f"StepFlops.training: {part}={value!r}; use True/'full', 'input_grad' or False/'frozen'"
                )
            modes[part] = mode
        total = self.vision_patch_embed * (2 if modes["vision"] == "full" else 1)
        upstream = False  # does anything before this part need gradients?
        for part in ("vision", "svlm", "projector", "llm"):
            mode = modes[part]
            factor = {"full": 3, "input_grad": 2, "frozen": 2 if upstream else 1}[mode]
            total += factor * getattr(self, part)
            upstream = upstream or mode != "frozen"
        return total

    def __add__(self, other: StepFlops) -> StepFlops:
        return StepFlops(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "forward": self.forward}


def compressor_flops(
    svlm_config: Any,
    sequence_lengths: Iterable[int],
    grid_thw: Iterable[Sequence[int]],
    causal: Causal = "full",
    past_lengths: Iterable[int] | None = None,
) -> StepFlops:
    """The ``qwen3_vl`` compressor: vision tower on ``grid_thw`` + SVLM text model on the sequences.

    ``sequence_lengths`` are whole SVLM inputs (prompt, visual placeholders, query and the
    ``k_max`` memory tokens); pass padded widths to count what a padded batch executes. A
    question answered from cached prefixes passes only its own tokens there and the prefix
    lengths as ``past_lengths`` (and no ``grid_thw``: the vision tower does not run).
    """
    vision = vision_tower_flops(_get(svlm_config, "vision_config"), grid_thw)
    text = decoder_flops(
        _get(svlm_config, "text_config"), sequence_lengths, lm_head=False, causal=causal, past_lengths=past_lengths
    )
    return StepFlops(
        vision_patch_embed=vision["patch_embed"],
        vision=vision["blocks"] + vision["mergers"],
        svlm=text["layers"],
    )


def tempo_step_flops(
    svlm_config: Any,
    llm_config: Any,
    *,
    svlm_lengths: Iterable[int],
    grid_thw: Iterable[Sequence[int]],
    projected_tokens: int,
    llm_lengths: Iterable[int],
    projector_hidden: Sequence[int] = (),
    causal: Causal = "full",
) -> StepFlops:
    """Forward FLOPs of one ``TempoModel.forward``: compressor, projector and LLM (with LM head)."""
    step = compressor_flops(svlm_config, svlm_lengths, grid_thw, causal)
    d_in = int(_get(_get(svlm_config, "text_config"), "hidden_size"))
    d_out = int(_get(llm_config, "hidden_size"))
    step.projector = projector_flops(d_in, d_out, projected_tokens, projector_hidden)
    llm = decoder_flops(llm_config, llm_lengths, lm_head=True, causal=causal)
    step.llm = llm["layers"] + llm["lm_head"]
    return step


# ---------------------------------------------------------------------------------- recording
class FlopRecorder:
    """Counts the FLOPs a ``TempoModel`` really runs, from the shapes its parts receive.

    Forward pre-hooks on ``compressor.svlm`` (a Hugging Face Qwen3-VL model), ``projector`` and
    ``decoder`` record sequence lengths (attention-mask sums, or padded widths with
    ``padded=True``), patch grids and projected token counts; :meth:`flops` turns them into a
    :class:`StepFlops`. Hooks survive FSDP wrapping (they sit on the original modules). Call
    :meth:`reset` at the start of each step and :meth:`remove` when done.
    """

    def __init__(self, model: Any, *, padded: bool = False, causal: Causal = "full") -> None:
        compressor = getattr(model, "compressor", None)
        svlm = getattr(compressor, "svlm", None)
        if svlm is None:
            raise ConfigError(
                "FlopRecorder counts the qwen3_vl compressor (it needs model.compressor.svlm); "
                f"got compressor {type(compressor).__name__}"
            )
        self.svlm_config = svlm.config
        self.padded = padded
        self.causal: Causal = causal
        self.decoder_config = None
        self.projector_weights = 0
        decoder = getattr(model, "decoder", None)
        hf = getattr(decoder, "model", None)
        if hf is not None:
            self.decoder_config = hf.config
        projector = getattr(model, "projector", None)
        if projector is not None:
            import torch.nn as nn

            self.projector_weights = sum(
                m.in_features * m.out_features for m in projector.modules() if isinstance(m, nn.Linear)
            )
        self.reset()
        self._handles = [svlm.register_forward_pre_hook(self._on_svlm, with_kwargs=True)]
        if projector is not None:
            self._handles.append(projector.register_forward_pre_hook(self._on_projector))
        if decoder is not None and self.decoder_config is not None:
            self._handles.append(decoder.register_forward_pre_hook(self._on_decoder, with_kwargs=True))

    def reset(self) -> None:
        self.svlm_lengths: list[int] = []
        self.svlm_past: list[int] = []
        self.grid_thw: list[tuple[int, int, int]] = []
        self.projected_tokens = 0
        self.llm_lengths: list[int] = []

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _lengths(self, mask) -> list[int]:
        if self.padded:
            return [int(mask.shape[1])] * int(mask.shape[0])
        return [int(n) for n in mask.sum(1).tolist()]

    def _on_svlm(self, module, args, kwargs) -> None:
        mask = kwargs.get("attention_mask")
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        past = 0 if cache is None else int(cache.get_seq_length())
        if mask is not None:  # with a cache, the mask covers the cached columns first
            self.svlm_lengths += self._lengths(mask[:, past:])
            self.svlm_past += self._lengths(mask[:, :past]) if past else [0] * int(mask.shape[0])
        elif kwargs.get("position_ids") is not None:  # a packed call: its segments, not its row
            lengths = packed_lengths(kwargs["position_ids"])
            self.svlm_lengths += lengths
            self.svlm_past += [0] * len(lengths)
        for key in ("video_grid_thw", "image_grid_thw"):
            grid = kwargs.get(key)
            if grid is not None:
                self.grid_thw += [tuple(int(v) for v in row) for row in grid.tolist()]

    def _on_projector(self, module, args) -> None:
        if args:
            self.projected_tokens += int(args[0].reshape(-1, args[0].shape[-1]).shape[0])

    def _on_decoder(self, module, args, kwargs) -> None:
        mask = args[1] if len(args) > 1 else kwargs.get("attention_mask")
        if mask is not None:
            self.llm_lengths += self._lengths(mask)
        elif kwargs.get("position_ids") is not None:  # packed rows (a row's padding tail counts as one)
            self.llm_lengths += packed_lengths(kwargs["position_ids"])

    def flops(self) -> StepFlops:
        """The recorded forward FLOPs since the last :meth:`reset`."""
        step = compressor_flops(
            self.svlm_config, self.svlm_lengths, self.grid_thw, self.causal, past_lengths=self.svlm_past
        )
        step.projector = 2.0 * self.projected_tokens * self.projector_weights
        if self.decoder_config is not None and self.llm_lengths:
            llm = decoder_flops(self.decoder_config, self.llm_lengths, lm_head=True, causal=self.causal)
            step.llm = llm["layers"] + llm["lm_head"]
        return step


def packed_lengths(position_ids: Any) -> list[int]:
    """Lengths of the sequences of packed rows: runs of text positions that each restart at 0
    (``[B, L]``, or the text row of the four-row M-RoPE form ``[4, B, L]``), as transformers reads them."""
    text = position_ids[0] if position_ids.ndim == 3 and position_ids.shape[0] == 4 else position_ids
    if text.ndim == 3:  # three M-RoPE rows without a text row: one unpacked sequence per row
        return [int(text.shape[-1])] * int(text.shape[1])
    lengths: list[int] = []
    for row in text.reshape(-1, text.shape[-1]):
        starts = (row.diff() != 1).nonzero().flatten().add(1).tolist()
        edges = [0, *starts, int(row.shape[0])]
        lengths += [b - a for a, b in zip(edges, edges[1:])]
    return lengths
