"""jisik over HTTP: the same `Jisik.ask` and search the CLI shells, for programs (JSON, an
OpenAI-compatible chat endpoint that existing clients can point at) and people (a Korean page).

Standard library only (`http.server`), so it runs offline wherever jisik runs. Requests are
answered one at a time under a lock: the reader is CPU-bound, so on a small machine
concurrency would only slow every answer down; scale out with more processes.

    GET  /                     the page (질문하기)
    POST /v1/ask               {"question", "as_of"?, "candidate_ids"?, "min_confidence"?, "use_memory"?}
    GET  /v1/search?q=..&k=10&as_of=..
    POST /v1/chat/completions  OpenAI's request shape; the last user message is the question
                               ("stream": true gets OpenAI's server-sent chunks)
    GET  /v1/models, /v1/stats
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

from .present import answer_lines, hit_json

MODEL_NAME = "jisik"
MAX_BODY_BYTES = 1 << 20


class RequestError(ValueError):
    """A request the client must fix: answered with 400 and the message."""


def ask_request(app, body: dict) -> dict:
    question = body.get("question")
    if not isinstance(question, str):
        raise RequestError("'question' must be a string")
    mc = body.get("min_confidence")
    if mc is not None and (isinstance(mc, bool) or not isinstance(mc, (int, float))):
        raise RequestError("'min_confidence' must be a number between 0 and 1")
    return app.ask(question, as_of=body.get("as_of"), candidate_ids=body.get("candidate_ids"),
                   use_memory=bool(body.get("use_memory", True)),
                   min_confidence=None if mc is None else float(mc))


def chat_question(body: dict) -> str:
    """The text of the last user message (a string, or OpenAI's list of content parts)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of {\"role\", \"content\"}")
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
            if isinstance(content, str):
                return content
            raise RequestError("the last user message has no text content")
    raise RequestError("no message with role 'user'")


def chat_completion(app, body: dict) -> dict:
    """OpenAI's chat.completion object; `jisik` carries the structured answer (evidence,
    citations, confidence) for clients that want more than the text."""
    out = app.ask(chat_question(body))
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": MODEL_NAME,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "\n".join(answer_lines(out))},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "jisik": out,
    }


def chat_chunks(completion: dict) -> list[dict]:
    """The completion as OpenAI's stream of chat.completion.chunk objects: the whole answer in
    one delta (it exists only once the reader is done), then the stop."""
    head = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    message = completion["choices"][0]["message"]
    return [head | {"choices": [{"index": 0, "delta": message, "finish_reason": None}], "jisik": completion["jisik"]},
            head | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]


def search_request(app, query: dict[str, list[str]]) -> dict:
    q = query.get("q", [""])[0]
    try:
        k = int(query.get("k", ["10"])[0])
    except ValueError:
        raise RequestError("'k' must be a whole number") from None
    if not 1 <= k <= 1000:
        raise RequestError("'k' must be between 1 and 1000")
    hits = app.search(q, k, as_of=query.get("as_of", [None])[0])
    return {"query": q, "hits": [hit_json(h) for h in hits]}


def make_server(app, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    lock = threading.Lock()
    page = resources.files("jisik").joinpath("page.html").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        server_version = "jisik"

        def log_message(self, fmt, *args):  # quiet by default; errors still reach the client
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj) -> None:
            self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

        def _error(self, status: int, message: str) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._json(status, {"error": {"message": message, "type": kind}})

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise RequestError(f"the request body is over {MAX_BODY_BYTES} bytes")
            try:
                body = json.loads(self.rfile.read(length).decode("utf-8") or "null")
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise RequestError(f"the body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise RequestError("the body must be a JSON object")
            return body

        def _handle(self, route, respond=None) -> None:
            """`route()` under the lock, its result sent by `respond` (JSON by default)."""
            try:
                with lock:
                    result = route()
            except ValueError as exc:  # RequestError, InputError (a bad date, ...)
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
            except Exception as exc:  # noqa: BLE001 - the client gets a message, the server stays up
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")
            else:
                (respond or (lambda obj: self._json(HTTPStatus.OK, obj)))(result)

        def _events(self, events: list[dict]) -> None:
            """Server-sent events, as OpenAI streams them."""
            body = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + "data: [DONE]\n\n"
            self._send(HTTPStatus.OK, body.encode("utf-8"), "text/event-stream; charset=utf-8")

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif url.path == "/v1/search":
                self._handle(lambda: search_request(app, parse_qs(url.query)))
            elif url.path == "/v1/models":
                self._json(HTTPStatus.OK, {"object": "list", "data": [{"id": MODEL_NAME, "object": "model",
                                                                       "owned_by": "jisik"}]})
            elif url.path == "/v1/stats":
                self._handle(app.stats)
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: GET {url.path}")

        def do_POST(self) -> None:
            routes = {"/v1/ask": ask_request, "/v1/chat/completions": chat_completion}
            path = urlparse(self.path).path
            if path not in routes:
                self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {path}")
                return
            try:
                body = self._body()
            except RequestError as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
                return
            if path == "/v1/chat/completions" and body.get("stream"):
                self._handle(lambda: chat_chunks(chat_completion(app, body)), self._events)
                return
            self._handle(lambda: routes[path](app, body))

    return ThreadingHTTPServer((host, port), Handler)
