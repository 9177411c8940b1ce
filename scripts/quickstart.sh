#!/usr/bin/env bash
# Set up jisik in ./.venv, build a demo store from the bundled Korean sample, and query it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh
export JISIK_DB="${JISIK_DB:-$PWD/runs/demo.db}"
mkdir -p "$(dirname "$JISIK_DB")"
echo "== 1. 문서 넣기 (store: $JISIK_DB)"
jisik ingest jisik/sample/docs.jsonl
echo "== 2. 검색: 한글을 만든 왕"
jisik search "한글을 만든 왕" -k 3
echo "== 3. 질문에 답하기"
jisik ask --batch jisik/sample/questions.jsonl
echo "== 4. 문서 갱신 후 다시 묻기 (새 기록), 그리고 갱신 전 시점(as-of)으로 묻기"
jisik ingest jisik/sample/updates.jsonl
jisik ask "한빛 리그 한 시즌 최다 홈런 기록은 몇 개인가?"
jisik ask "한빛 리그 한 시즌 최다 홈런 기록은 몇 개인가?" --as-of 2020-01-01
jisik history baseball-record
