"""A tiny Qwen-style byte-level BPE tokenizer, trained locally and saved in the Hugging Face layout.

It carries Qwen's special tokens and ChatML chat template, and "Yes"/"No" as ordinary tokens, so
the kit's prompt code, the compressor's relevance direction and the decoder's assembly run exactly
as they do with the real Qwen3 / Qwen3-VL tokenizers. Loaded with ``AutoTokenizer.from_pretrained``.
"""

from __future__ import annotations

import copy
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

from tempo_kit.time_tags import format_time_tag

#: Qwen's pre-tokenisation regex (digits split one by one, as in Qwen2/Qwen3).
QWEN_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

#: Qwen's special tokens, in the order the real vocabularies list them.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

#: ChatML, as Qwen's instruct checkpoints template it (text content only).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'video' %}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_WORDS = (
    "Yes No yes no the a an is are was were what which who when where why how video segment frame "
    "seconds second time query question answer option options choose correct relevant irrelevant "
    "appears appear shown show shows red green blue yellow white black orange purple circle square "
    "triangle star digit number shape colour color object person moves left right top bottom middle "
    "center before after during first last one two three four five six seven eight nine zero "
    "You are helpful assistant query-conditioned visual compressor Store in the provided memory tokens "
    "minimal information needed to answer Ignore details Now before compressing exactly or this to "
    "Context turn Query happens happened at of and with on it there does do did describe background "
    "event needle haystack count many A B C D E The answer is"
)


def _training_corpus() -> list[str]:
    words = _WORDS.split()
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    lines += [format_time_tag(t / 2) for t in range(0, 400)]  # the tags the models read
    lines += [f"({c}) {c}. Answer: {c}" for c in "ABCDE"]
    lines += [f"{n} {n * 7} {n}.{n}" for n in range(100)]
    return lines * 4


def train_backend(vocab_size: int = 1024) -> Tokenizer:
    """The tiny byte-level BPE (Qwen's pre-tokenisation), trained on the kit's small corpus."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    backend.train_from_iterator(_training_corpus(), trainer=trainer)
    return backend


def check_yes_no(tokenizer) -> None:
    """The compressor's relevance reads "Yes"/"No" as single tokens: a tiny tokenizer must keep them so."""
    for word in ("Yes", "No"):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise RuntimeError(f"tiny tokenizer must encode {word!r} as one token, got {ids}")


def build_tokenizer(vocab_size: int = 1024):
    """Train the tiny BPE and wrap it as a ``Qwen2Tokenizer`` with Qwen's special tokens."""
    from transformers import Qwen2Tokenizer

    backend = train_backend(vocab_size)
    state = backend.model
    vocab = backend.get_vocab()
    merges = _merges_of(state)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL_TOKENS[1:]})
    tokenizer.add_special_tokens({"pad_token": "<|endoftext|>"})
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.model_max_length = 32768
    check_yes_no(tokenizer)
    return tokenizer


def build_family_tokenizer(
    special_tokens: list[str],
    chat_template: str,
    *,
    bos: str | None = None,
    eos: str,
    pad: str | None = None,
    unk: str | None = None,
    vocab_size: int = 1024,
):
    """The tiny BPE as a generic fast tokenizer with another family's special tokens and chat template.

    Used for the decoder families whose real tokenizers are not Qwen's (Llama 3, Gemma, Mistral,
    Phi-3): their special tokens and template are what the kit's prompt code reads, the word pieces
    are the kit's small BPE. ``pad`` ``None`` keeps the family's lack of a padding token.
    """
    from tokenizers import decoders
    from transformers import PreTrainedTokenizerFast

    backend = train_backend(vocab_size)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    named = {"bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk}
    tokenizer.add_special_tokens({k: v for k, v in named.items() if v is not None})
    tokenizer.chat_template = chat_template
    tokenizer.model_max_length = 32768
    check_yes_no(tokenizer)
    return tokenizer


def with_family_tokens(tokenizer, special_tokens, chat_template: str):
    """A copy of ``tokenizer`` with a VLM family's added special tokens and its chat template (the
    tiny SVLMs share the Qwen word pieces and differ only in these)."""
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    tokenizer.chat_template = chat_template
    return tokenizer


def _merges_of(bpe_model) -> list[tuple[str, str]]:
    """The merge list of a trained ``tokenizers`` BPE model, read back through its JSON state."""
    import json

    dumped = json.loads(Tokenizer(bpe_model).to_str())
    merges = dumped["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]


def save_tokenizer(out_dir: str | Path, vocab_size: int = 1024):
    """Build the tiny tokenizer and ``save_pretrained`` it into ``out_dir``; returns it."""
    tokenizer = build_tokenizer(vocab_size)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer
