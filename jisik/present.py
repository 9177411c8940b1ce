"""An answer as Korean text: the CLI prints it and the chat endpoint replies with it, so a
person sees the same answer, evidence, source and date however they ask."""

from __future__ import annotations


def answer_lines(out: dict) -> list[str]:
    """`out` is `Jisik.ask`'s answer."""
    if out["abstained"]:
        score = f" (신뢰도 {out['confidence']:.2f})" if out["confidence"] > 0 else ""  # none read: no score
        lines = [f"답: {out.get('reason') or '근거를 찾지 못했습니다'}{score}"]
        # yes/no or definition question: the sentences that bear on it
        return lines + [f"관련 문장: {c['sentence']} [{c['title'] or c['id']}]" for c in out["citations"]]
    ev = out["evidence"]
    date = f", {ev['published_at'][:10]} 기준" if ev.get("published_at") else ""
    memo = " · 기억된 답변" if out.get("from_memory") else ""
    return [f"답: {out['answer']} (신뢰도 {out['confidence']:.2f}{memo}, {out['latency_ms']:.0f} ms)",
            f"근거: {ev['sentence']}",
            f"출처: {ev['title'] or ev['id']} [{ev['id']} v{ev['version']}{date}]"]


def hit_json(h) -> dict:
    """A search hit (`jisik.documents.Hit`) as the CLI and the API return it."""
    return {"id": h.id, "title": h.title, "score": round(h.score, 6), "text": h.text, "start": h.start,
            "end": h.end, "version": h.version, "published_at": h.published_at}
