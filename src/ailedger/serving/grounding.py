"""Grounded answers: retrieved records go into the prompt as numbered sources; their ids come back as citations.

Chat requests get one system message that lists the sources, merged into the request's own first
system message when it has one (many chat templates take a single system turn); completions get the
same block before the prompt. Each source is a snippet (`retrieval.SNIPPET_CHARS`), and when the
prompt with all of them plus the answer's tokens would overflow the model's context, the
lowest-ranked sources are dropped until it fits. Only the sources that were really in the prompt are
cited, so only their contributors are paid; and since they are part of the prompt, their tokens are
metered like the rest of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ailedger.core.errors import LedgerError
from ailedger.serving.openai_params import ApiError, RagParams, bad, chat_messages, completion_prompt
from ailedger.serving.retrieval import Hit, Retriever

INSTRUCTION = "Answer from the numbered sources below where they help, and cite each source you use as [n]."


def sources_block(hits: Sequence[Hit]) -> str:
    return "\n".join([INSTRUCTION, *(f"[{i}] {h.text}" for i, h in enumerate(hits, 1))])


def chat_with_sources(messages: list[dict[str, str]], hits: Sequence[Hit]) -> list[dict[str, str]]:
    if not hits:
        return messages
    block = sources_block(hits)
    if messages and messages[0]["role"] == "system":
        own = messages[0]["content"]
        return [{"role": "system", "content": f"{own}\n\n{block}" if own else block}, *messages[1:]]
    return [{"role": "system", "content": block}, *messages]


def prompt_with_sources(prompt: str, hits: Sequence[Hit]) -> str:
    return f"{sources_block(hits)}\n\n{prompt}" if hits else prompt


def search_query(body: Mapping[str, Any], chat: bool) -> str:
    """What retrieval searches with: the last user message with text (chat), or the prompt (completion)."""
    if chat:
        asked = [m["content"] for m in chat_messages(body) if m["role"] == "user" and m["content"].strip()]
        if not asked:
            raise bad("retrieval searches with the last user message; send one with text", "messages",
                      "empty_prompt")
        return asked[-1]
    prompt = completion_prompt(body)
    if not isinstance(prompt, str):
        raise bad("retrieval searches with the prompt's text; send the prompt as a string, not token ids",
                  "prompt", "invalid_type")
    return prompt


def ground(retriever: Retriever | None, body: Mapping[str, Any], chat: bool, rag: RagParams,
           render: Callable[[Sequence[Hit]], list[int]], budget: int) -> tuple[list[int], list[Hit]]:
    """Search the snapshot with the request's query; the prompt `render`s with as many of the hits as fit."""
    if retriever is None:
        raise bad("retrieval (`rag`) needs a server started with a ledger (`ailedger serve --node URL`)", "rag",
                  "unsupported_parameter")
    query = search_query(body, chat)
    try:
        hits = retriever.search(rag.datanet, rag.version, query, rag.k)
    except LedgerError as exc:
        raise ApiError.of(exc, {"datanet_not_found": "rag.datanet", "version_not_found": "rag.version"}.get(
            exc.code.name)) from None
    return fit(hits, render, budget)


def fit(hits: Sequence[Hit], render: Callable[[Sequence[Hit]], list[int]],
        budget: int) -> tuple[list[int], list[Hit]]:
    """The prompt (token ids) with as many of the best hits as keep it within `budget` tokens, and those hits."""
    for n in range(len(hits), 0, -1):
        ids = render(hits[:n])
        if len(ids) <= budget:
            return ids, list(hits[:n])
    return render(()), []


def citations_json(hits: Sequence[Hit], rag: RagParams) -> list[dict[str, Any]]:
    """The sources as cited: `[n]` in the prompt is `index` n."""
    return [{"index": i, "record": h.record, "datanet": rag.datanet, "version": rag.version,
             "contributor": h.contributor, "score": round(h.score, 6)} for i, h in enumerate(hits, 1)]
