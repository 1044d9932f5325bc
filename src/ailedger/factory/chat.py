"""Chat records: which characters of a rendered conversation are the assistant's to learn.

A chat record trains on what the model should say, not on what it is told: the loss covers each
assistant message's content and the template's end-of-turn marker after it (so the model learns to
stop), while system and user turns and the template's scaffolding (`<|im_start|>user\\n`) are context
only. This is TRL's `assistant_only_loss` and Axolotl's `train_on_inputs: false`, found without
template-specific `{% generation %}` markers, by rendering the conversation incrementally with the
tokenizer's own chat template. Assistant turn `i` spans

- from where its content starts: the template renders `messages[:i]` followed by an assistant turn
  holding a marker string, and the turn's content starts where the marker does;
- to the end of the render of `messages[:i + 1]`, less trailing whitespace (its end-of-turn marker
  is kept: the model must learn to stop).

These offsets hold only if the partial renders are prefixes of the full one, and the prompt that
asks for turn `i` at inference (`messages[:i]` with the generation prompt) must be one too, ending
where the content starts or before. ChatML-style templates (SmolLM2, Qwen2) satisfy this and some do
not (a template that counts the messages, or drops earlier turns' reasoning, or rewrites contents).
`assistant_spans` checks every one of these and answers None when one fails; the record then trains
on every token, with a recorded flag, rather than on spans that might be wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

Turn = dict[str, str]
Span = tuple[int, int]  # [start, end) character offsets into the full render
ASSISTANT = "assistant"
MARKER = "ailedger:assistant-content:7f3a9c"  # stands in for a content to find where contents start


def turns_of(messages: Sequence[Any]) -> list[Turn]:
    """A record's `messages` as {role, content} strings (entries that are not objects are skipped)."""
    return [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
            for m in messages if isinstance(m, dict)]


def render(tokenizer: PreTrainedTokenizerBase, turns: list[Turn], prompt: bool = False) -> str | None:
    """The chat template applied to `turns` (with the generation prompt if `prompt`), or None if it fails."""
    try:
        out = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=prompt)
    except Exception:  # a Jinja template can raise anything (TemplateError, raise_exception, a KeyError)
        return None
    return out if isinstance(out, str) else None


def assistant_spans(tokenizer: PreTrainedTokenizerBase, turns: list[Turn]) -> tuple[str, list[Span]] | None:
    """The full render and the character span of each assistant turn, or None if the template is not prefix-stable."""
    full = render(tokenizer, turns)
    if full is None:
        return None
    spans: list[Span] = []
    for i, turn in enumerate(turns):
        if turn["role"] != ASSISTANT:
            continue
        probe = render(tokenizer, [*turns[:i], {"role": ASSISTANT, "content": MARKER}])
        asked = render(tokenizer, turns[:i], prompt=True) if i else ""  # no prompt renders from zero messages
        said = render(tokenizer, turns[:i + 1])
        if probe is None or asked is None or said is None:
            return None
        start, content = probe.find(MARKER), turn["content"]
        end = max(len(said.rstrip()), start + len(content))
        if not (start >= 0 and full.startswith(probe[:start]) and full.startswith(content, start)
                and full.startswith(asked) and len(asked) <= start and full.startswith(said) and end <= len(said)
                and (not spans or spans[-1][1] <= start)):
            return None
        spans.append((start, end))
    return full, spans


def pieces(full: str, spans: list[Span]) -> list[tuple[str, bool]]:
    """`full` cut at the span edges, each piece with whether it is supervised (empty pieces dropped)."""
    out: list[tuple[str, bool]] = []
    at = 0
    for start, end in spans:
        out += [(full[at:start], False), (full[start:end], True)]
        at = end
    out.append((full[at:], False))
    return [(text, learn) for text, learn in out if text]
