"""jisik/api.py over a real socket: the same answers as `ask`, OpenAI's chat shape, clear
errors for bad requests, and the Korean page."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from jisik.api import make_server
from jisik.app import Jisik

from .conftest import SAMPLE


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    app = Jisik.open(tmp_path_factory.mktemp("api") / "api.db")
    app.ingest_paths([SAMPLE / "docs.jsonl"])
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    app.close()


def call(base, path, body=None, raw: bytes | None = None):
    """(status, parsed JSON or text) of a GET, or of a POST when a body is given."""
    data = raw if raw is not None else (None if body is None else json.dumps(body, ensure_ascii=False).encode())
    req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, ctype, text = r.status, r.headers["Content-Type"], r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        status, ctype, text = e.code, e.headers["Content-Type"], e.read().decode("utf-8")
    return status, json.loads(text) if ctype.startswith("application/json") else text


def test_ask_answers_with_evidence_as_the_cli_does(base):
    status, out = call(base, "/v1/ask", {"question": "KTX는 언제 개통했나?", "use_memory": False})
    assert status == 200 and not out["abstained"]
    assert out["answer"] == "2004년 4월 1일"
    assert out["evidence"]["id"] == "ktx" and out["answer"] in out["evidence"]["sentence"]


def test_ask_declines_and_restricts_to_candidates(base):
    status, out = call(base, "/v1/ask", {"question": "화성의 수도는 어디인가?"})
    assert status == 200 and out["abstained"] and out["answer"] is None and out["reason"]
    # the only document that may be read does not say when KTX opened
    status, out = call(base, "/v1/ask", {"question": "KTX는 언제 개통했나?", "candidate_ids": ["hangul"]})
    assert status == 200 and (out["abstained"] or out["evidence"]["id"] == "hangul")


def test_bad_requests_get_400_with_a_message(base):
    for body, words in [({"question": 3}, "'question'"), ({"question": "KTX", "as_of": "작년"}, "ISO date"),
                        ({"question": "KTX", "candidate_ids": "ktx"}, "candidate_ids"),
                        ({"question": "KTX", "min_confidence": 2}, "min_confidence")]:
        status, out = call(base, "/v1/ask", body)
        assert status == 400 and words in out["error"]["message"], body
    status, out = call(base, "/v1/ask", raw=b"{not json")
    assert status == 400 and "not JSON" in out["error"]["message"]
    status, out = call(base, "/v1/search?q=KTX&k=lots")
    assert status == 400 and "'k'" in out["error"]["message"]
    status, out = call(base, "/v1/nothing")
    assert status == 404 and "/v1/nothing" in out["error"]["message"]


def test_chat_completions_speaks_openais_shape(base):
    body = {"model": "anything", "messages": [{"role": "system", "content": "한국어로 답하세요."},
                                             {"role": "user", "content": "KTX는 언제 개통했나?"}]}
    status, out = call(base, "/v1/chat/completions", body)
    assert status == 200 and out["object"] == "chat.completion"
    message = out["choices"][0]["message"]
    assert message["role"] == "assistant" and out["choices"][0]["finish_reason"] == "stop"
    assert message["content"].startswith("답: 2004년 4월 1일") and "출처: KTX" in message["content"]
    assert out["jisik"]["evidence"]["id"] == "ktx"
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "KTX는 언제 개통했나?"}]}]}
    assert call(base, "/v1/chat/completions", parts)[1]["jisik"]["answer"] == "2004년 4월 1일"
    for bad, words in [({"messages": []}, "messages"), ({"messages": [{"role": "system", "content": "x"}]}, "'user'"),
                       ({"messages": [{"role": "user", "content": 7}]}, "no text")]:
        status, out = call(base, "/v1/chat/completions", bad)
        assert status == 400 and words in out["error"]["message"]
    assert call(base, "/v1/models")[1]["data"][0]["id"] == "jisik"


def test_search_and_stats(base):
    status, out = call(base, "/v1/search?q=%ED%95%9C%EB%9D%BC%EC%82%B0&k=2")  # 한라산
    assert status == 200 and out["hits"][0]["id"] == "jeju" and len(out["hits"]) <= 2
    status, out = call(base, "/v1/stats")
    assert status == 200 and out["documents"] > 0


def test_the_page_is_korean_and_asks_the_api(base):
    status, page = call(base, "/")
    assert status == 200 and '<html lang="ko">' in page and "질문하기" in page and "/v1/ask" in page


def test_chat_streams_as_openai_clients_expect(base):
    body = {"stream": True, "messages": [{"role": "user", "content": "KTX는 언제 개통했나?"}]}
    status, text = call(base, "/v1/chat/completions", body)
    assert status == 200 and text.endswith("data: [DONE]\n\n")
    events = [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]
    assert [e["object"] for e in events] == ["chat.completion.chunk"] * 2
    assert events[0]["choices"][0]["delta"]["content"].startswith("답: 2004년 4월 1일")
    assert events[-1]["choices"][0]["finish_reason"] == "stop" and events[0]["id"] == events[1]["id"]
    status, out = call(base, "/v1/chat/completions", {"stream": True, "messages": []})
    assert status == 400 and "messages" in out["error"]["message"]
