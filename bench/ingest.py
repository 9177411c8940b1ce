"""Ingest rate against its bound: what Kiwi and the encoder alone can do on this machine.

  python bench/ingest.py [--docs 1000]

Measured in one run on the same documents: (1) Kiwi sentence+morpheme analysis alone,
(2) the encoder alone on the resulting passages, (3) `jisik ingest` end to end into a new
store. The bound is the sequential sum (1)+(2); jisik overlaps analysis and encoding on two
threads, so it can exceed 100 % of that bound on two cores.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, parser  # noqa: E402

from jisik.app import Jisik  # noqa: E402
from jisik.documents import Document, chunk_sentences  # noqa: E402
from jisik.embed import get_encoder  # noqa: E402
from jisik.eval import read_jsonl  # noqa: E402
from jisik.korean import get_analyzer  # noqa: E402


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--encoder", default="use")
    args = p.parse_args()
    data = data_dir(args)
    records = (read_jsonl(data / "korquad" / "passages.jsonl") + read_jsonl(data / "nomiracl_ko" / "passages.jsonl"))
    docs = [Document.from_record(r) for r in records[:args.docs]]
    analyzer, encoder = get_analyzer(), get_encoder(args.encoder)
    analyzer.analyze_batch(["준비 운동이다."])
    encoder.encode_passages(["준비 운동이다."])

    t = time.perf_counter()
    analyses = []
    for i in range(0, len(docs), 64):
        analyses += analyzer.analyze_batch([d.text for d in docs[i:i + 64]])
    t_analyze = time.perf_counter() - t
    chunks = [c.text for d, a in zip(docs, analyses) for c in chunk_sentences(a.sentences, d.text)]
    t = time.perf_counter()
    for i in range(0, len(chunks), 256):
        encoder.encode_passages(chunks[i:i + 256])
    t_encode = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        app = Jisik.open(Path(tmp) / "ingest.db", encoder=args.encoder)
        report = app.ingest_documents(docs)
        app.close()
    bound = len(chunks) / (t_analyze + t_encode)
    result = {
        "documents": len(docs), "passages": len(chunks), "characters": sum(len(d.text) for d in docs),
        "analyze_s": round(t_analyze, 2), "analyze_chars_per_s": round(sum(len(d.text) for d in docs) / t_analyze),
        "encode_s": round(t_encode, 2), "encode_passages_per_s": round(len(chunks) / t_encode, 1),
        "bound_passages_per_s": round(bound, 1),
        "jisik_s": round(report.seconds, 2), "jisik_passages_per_s": round(report.passages / report.seconds, 1),
        "jisik_share_of_bound": round(report.passages / report.seconds / bound, 3),
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
