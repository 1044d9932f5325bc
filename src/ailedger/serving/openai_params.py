"""OpenAI request bodies -> what the engine needs, with OpenAI's error shape for anything wrong.

Why by hand and not with a pydantic model: OpenAI's errors name the offending parameter (`param`),
clients ignore fields they did not send, and the few types here (a number that must not be a
boolean, `stop` as a string or a list) read more plainly as one function each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.core.errors import LedgerError

MAX_STOP = 4
DEFAULT_RAG_K = 4
MAX_RAG_K = 16


class ApiError(Exception):
    """An answer in OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        if self.status >= 500:
            return "server_error"
        return {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}.get(
            self.status, "invalid_request_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    @classmethod
    def of(cls, exc: LedgerError, param: str | None = None, status: int | None = None) -> ApiError:
        """A coded ledger error, keeping its code name and sentence."""
        message = exc.code.message + (f" ({exc.detail})" if exc.detail else "")
        return cls(status or exc.code.http_status, message, param, exc.code.name)


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param, code)


@dataclass(frozen=True)
class Params:
    """The generation parameters both endpoints share."""

    model: str
    max_tokens: int | None
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


def common(body: Mapping[str, Any], max_tokens_key: str = "max_tokens") -> Params:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("`model` is required: the base model's name or an adapter NAME, NAME@N or NAME@sha256:HEX",
                  "model", "missing_required_parameter")
    n = body.get("n", 1)
    if n is not None and (_int(n, "n") != 1):
        raise bad("only n=1 is supported", "n", "unsupported_value")
    for key, ok in (("best_of", (None, 1)), ("echo", (None, False)), ("logprobs", (None, False)),
                    ("top_logprobs", (None, 0)), ("suffix", (None,))):
        if key in body and body[key] not in ok:
            raise bad(f"`{key}` is not supported", key, "unsupported_parameter")
    raw_max = body.get(max_tokens_key, body.get("max_tokens"))
    max_tokens = None if raw_max is None else _int(raw_max, "max_tokens")
    if max_tokens is not None and max_tokens < 1:
        raise bad("max_tokens must be at least 1", "max_tokens")
    temperature = _number(body.get("temperature", 1.0), "temperature", 0.0, 2.0)
    top_p = _number(body.get("top_p", 1.0), "top_p", 0.0, 1.0)
    if top_p <= 0:
        raise bad("top_p must be above 0", "top_p")
    seed = body.get("seed")
    seed = None if seed is None else _int(seed, "seed")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise bad("`stream` must be true or false", "stream", "invalid_type")
    options = body.get("stream_options") or {}
    if not isinstance(options, Mapping):
        raise bad("`stream_options` must be an object", "stream_options", "invalid_type")
    return Params(model, max_tokens, temperature, top_p, seed, _stop(body.get("stop")), stream,
                  bool(options.get("include_usage", False)))


@dataclass(frozen=True)
class RagParams:
    """`rag`: search version `version` of Datanet `datanet` for the `k` best records to ground the answer in."""

    datanet: str
    version: int
    k: int


def attribution_param(body: Mapping[str, Any]) -> bool:
    """`attribution`: true makes the answer wait for its attribution record and include it."""
    raw = body.get("attribution", False)
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise bad("`attribution` must be true or false", "attribution", "invalid_type")
    return raw


def rag_params(body: Mapping[str, Any]) -> RagParams | None:
    """`rag` as `{"datanet": NAME, "version": V >= 1, "k": 1..MAX_RAG_K (default 4)}`, or None when absent."""
    raw = body.get("rag")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise bad('`rag` must be an object: {"datanet": NAME, "version": V, "k": K}', "rag", "invalid_type")
    for key in raw:
        if key not in ("datanet", "version", "k"):
            raise bad(f"`rag.{key}` is not a retrieval setting (use datanet, version, k)", f"rag.{key}",
                      "unsupported_parameter")
    for key in ("datanet", "version"):
        if raw.get(key) is None:
            raise bad(f"`rag.{key}` is required", f"rag.{key}", "missing_required_parameter")
    datanet = raw["datanet"]
    if not isinstance(datanet, str) or not datanet:
        raise bad("`rag.datanet` must be a Datanet's name", "rag.datanet", "invalid_type")
    version = _int(raw["version"], "rag.version")
    if version < 1:
        raise bad("`rag.version` must be a snapshot's number, 1 or more", "rag.version")
    k = DEFAULT_RAG_K if raw.get("k") is None else _int(raw["k"], "rag.k")
    if not 1 <= k <= MAX_RAG_K:
        raise bad(f"`rag.k` must be between 1 and {MAX_RAG_K}", "rag.k")
    return RagParams(datanet, version, k)


def completion_prompt(body: Mapping[str, Any]) -> str | list[int]:
    """`prompt` as text, or as token ids (one prompt only: n prompts would be n choices)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise bad("the prompt is empty", "prompt", "empty_prompt")
        return prompt
    if isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        if not prompt:
            raise bad("the prompt is empty", "prompt", "empty_prompt")
        return list(prompt)
    raise bad("`prompt` must be a non-empty string or list of token ids (one prompt per request)", "prompt",
              "invalid_type")


def chat_messages(body: Mapping[str, Any]) -> list[dict[str, str]]:
    """`messages` as role/content pairs for the tokenizer's chat template (text parts joined)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("`messages` must be a non-empty list", "messages", "empty_prompt")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise bad(f"messages[{i}] must be an object with a `role`", f"messages[{i}]", "invalid_type")
        content = m.get("content")
        if isinstance(content, list):
            texts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
            if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
                raise bad("only text content parts are supported", f"messages[{i}].content", "unsupported_value")
            content = "".join(t for t in texts if isinstance(t, str))
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise bad(f"messages[{i}].content must be a string", f"messages[{i}].content", "invalid_type")
        out.append({"role": m["role"], "content": content})
    if not any(m["content"] for m in out):
        raise bad("every message is empty", "messages", "empty_prompt")
    return out


def _int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"`{param}` must be an integer", param, "invalid_type")
    return value


def _number(value: Any, param: str, low: float, high: float) -> float:
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(f"`{param}` must be a number", param, "invalid_type")
    if not low <= value <= high:
        raise bad(f"`{param}` must be between {low:g} and {high:g}", param)
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items: Sequence[Any] = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_STOP or not all(isinstance(s, str) for s in items):
        raise bad(f"`stop` must be a string or a list of at most {MAX_STOP} strings", "stop", "invalid_type")
    return tuple(s for s in items if s)
