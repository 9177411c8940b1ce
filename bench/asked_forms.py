"""Does the rule for date and count questions ever reject a right answer?

    python bench/asked_forms.py > docs/results/asked-forms.json

A `언제`/`며칠` question is answered only by a span that is a date, a `몇`/`얼마` question only
by a count (`QuestionInfo.asks`, `read.has_asked_form`; docs/reader.md, "Date and count
questions"). This applies the rule to the gold answers of all 4,163 KorQuAD dev questions,
located in their passages and analysed in context as the reader sees them: every gold answer
it rejects is a right answer the reader can no longer give. Prints one JSON object: how many
questions ask a date or a count, how many of their gold answers fit, and the ids of those
that do not.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from common import REPO, data_dir, parser

sys.path.insert(0, str(REPO))

from jisik.read import Reader, has_asked_form  # noqa: E402


def main() -> None:
    args = parser(__doc__).parse_args()
    data = data_dir(args)
    reader = Reader.load(kind="features")  # its question and passage analysis; no model is run
    passages = {}
    with open(data / "korquad" / "passages.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            passages[row["id"]] = row["text"]
    counts, rejected = Counter(), []
    with open(data / "korquad" / "questions.jsonl", encoding="utf-8") as f:
        questions = [json.loads(line) for line in f]
    for row in questions:
        q = reader.question(row["question"])
        if not q.asks:
            continue
        text = passages[row["gold_id"]]
        passage = reader.passage(text)
        fits = any(has_asked_form(q, s, start, start + len(answer))
                   for answer, start in zip(row["answers"], row["answer_starts"])
                   if text[start:start + len(answer)] == answer
                   for s in passage.sentences if s.start <= start and start + len(answer) <= s.end)
        counts[(q.asks, fits)] += 1
        if not fits:
            rejected.append({"id": row["id"], "asks": q.asks})  # ids only: no data text in the repo
    print(json.dumps({
        "questions": len(questions),
        "asks": {form: {"questions": counts[(form, True)] + counts[(form, False)], "gold_fits": counts[(form, True)]}
                 for form in ("date", "count")},
        "gold_rejected": rejected,
    }, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
