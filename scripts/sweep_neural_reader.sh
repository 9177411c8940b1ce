#!/usr/bin/env bash
# Fit neural-reader variants side by side on one GPU; one JSON summary line each (printed
# last, see scripts/fit_neural_reader.py); models go to OUTDIR/<tag>/neural_reader.npz.
#   scripts/sweep_neural_reader.sh ROUND PACK OUTDIR [python]
# ROUND 1-6 are the sweeps in docs/reader.md ("GPU-trained variants", "Subject-swapped
# negatives"; 7-8, with the judged real users' passages, are prepared and not yet run), run on one H100 (~4 to ~6 minutes each); the shipped soup averages six of their fits (scripts/soup_neural_reader.py).
# `val` runs leave the validation articles out and score them; `full` runs train on every
# training question. No flags = v2's recipe.
set -u
round=$1; pack=$2; out=$3; py=${4:-python3}
fit() {
  tag=$1; shift
  mkdir -p "$out/$tag"
  timeout 570 "$py" scripts/fit_neural_reader.py --pack "$pack" --device cuda --out "$out/$tag" --tag "$tag" "$@" \
    > "/tmp/fit-$tag.json" 2> "/tmp/fit-$tag.log" || echo "$tag failed: $(tail -3 /tmp/fit-$tag.log)"
}
val() { tag=$1; shift; fit "$tag" --holdout-val "$@"; }
# every layer tuned, dropout, 3 epochs of 16 groups, article-removed groups as extra negatives
ALL="--first-tuned 0 --dropout 0.1 --epochs 3 --groups 16 --removed-weight 1"
case $round in
1)
  val old-top8-r16 &
  val all-r16 $ALL --removed-weight 0 &
  val all-r16-removed $ALL &
  val all-r32-removed-e4 $ALL --rank 32 --epochs 4 &
  val all-r16-removed-k8 $ALL --sentences 8 &
  val all-r16-removed-e5 $ALL --epochs 5 --lr 5e-4 &
  val all-r16-removed-aw1 $ALL --answerable-weight 1.0 &
  val all-r64-removed $ALL --rank 64 --lr 5e-4 &
  ;;
2)
  val all-r16-removed-k8 $ALL --sentences 8 &
  val all-r32-removed-e4-aw1 $ALL --rank 32 --epochs 4 --answerable-weight 1.0 &
  val all-r32-removed-e4-seed2 $ALL --rank 32 --epochs 4 --seed 2 &
  val all-r16-removed-aw1-seed2 $ALL --answerable-weight 1.0 --seed 2 &
  val all-r32-removed2-e4-aw1 $ALL --rank 32 --epochs 4 --answerable-weight 1.0 --removed-weight 2 &
  fit full-r32-removed-e4 $ALL --rank 32 --epochs 4 &
  fit full-r32-removed-e4-aw1 $ALL --rank 32 --epochs 4 --answerable-weight 1.0 &
  fit full-r16-removed-aw1 $ALL --answerable-weight 1.0 &
  ;;
3)
  # kowiki cloze pre-training (a pack built with --cloze 40000), then KorQuAD as above
  val cloze1 --cloze-epochs 1 &
  fit full-cloze1 --cloze-epochs 1 &
  val cloze2 --cloze-epochs 2 &
  fit full-cloze2 --cloze-epochs 2 &
  val all-r16-cloze1 $ALL --removed-weight 0 --cloze-epochs 1 &
  fit full-all-r16-cloze1 $ALL --removed-weight 0 --cloze-epochs 1 &
  ;;
4)
  # subject-swapped negatives (a pack built with --cloze 40000 --swap near): two soup-member recipes
  val swap-cloze1 --cloze-epochs 1 --swapped-weight 1 &
  fit full-swap-cloze1 --cloze-epochs 1 --swapped-weight 1 &
  val all-r32-e4-aw1-swap $ALL --rank 32 --epochs 4 --answerable-weight 1.0 --swapped-weight 1 &
  fit full-all-r32-e4-aw1-swap $ALL --rank 32 --epochs 4 --answerable-weight 1.0 --swapped-weight 1 &
  ;;
5)
  # the soup's other four recipes with subject-swapped negatives (same pack as round 4)
  val swap --swapped-weight 1 &
  fit full-swap --swapped-weight 1 &
  val swap-cloze2 --cloze-epochs 2 --swapped-weight 1 &
  fit full-swap-cloze2 --cloze-epochs 2 --swapped-weight 1 &
  val all-r32-e4-swap $ALL --rank 32 --epochs 4 --swapped-weight 1 &
  fit full-all-r32-e4-swap $ALL --rank 32 --epochs 4 --swapped-weight 1 &
  val all-r16-aw1-swap $ALL --answerable-weight 1.0 --swapped-weight 1 &
  fit full-all-r16-aw1-swap $ALL --answerable-weight 1.0 --swapped-weight 1 &
  ;;
6)
  # second seeds of two swap recipes (for a larger soup), and swapped-group weight 2
  val all-r32-e4-swap-seed2 $ALL --rank 32 --epochs 4 --swapped-weight 1 --seed 2 &
  fit full-all-r32-e4-swap-seed2 $ALL --rank 32 --epochs 4 --swapped-weight 1 --seed 2 &
  val swap-cloze1-seed2 --cloze-epochs 1 --swapped-weight 1 --seed 2 &
  fit full-swap-cloze1-seed2 --cloze-epochs 1 --swapped-weight 1 --seed 2 &
  val all-r32-e4-swap2 $ALL --rank 32 --epochs 4 --swapped-weight 2 &
  val swap2-cloze1 --cloze-epochs 1 --swapped-weight 2 &
  ;;
7)
  # judged real users' passages (kind 5) and same-kind swaps, not yet run on a GPU (docs/reader.md,
  # "training on judged passages"; a pack built with --cloze 40000 --swap same-kind
  # --judged docs/results/real-users-passages-judged.json): the soup's six recipes, full twins,
  # and the validation twins of two of them (round 8 has the other four)
  J="--swapped-weight 1 --judged-weight 2"
  fit full-swap-j $J &
  fit full-swap-cloze1-j --cloze-epochs 1 $J &
  fit full-swap-cloze2-j --cloze-epochs 2 $J &
  fit full-all-r32-e4-swap-j $ALL --rank 32 --epochs 4 $J &
  fit full-all-r32-e4-aw1-swap-j $ALL --rank 32 --epochs 4 --answerable-weight 1.0 $J &
  fit full-all-r16-aw1-swap-j $ALL --answerable-weight 1.0 $J &
  val all-r32-e4-swap-j $ALL --rank 32 --epochs 4 $J &
  val swap-cloze1-j --cloze-epochs 1 $J &
  ;;
8)
  # the other four validation twins of round 7 (same pack)
  J="--swapped-weight 1 --judged-weight 2"
  val swap-j $J &
  val swap-cloze2-j --cloze-epochs 2 $J &
  val all-r32-e4-aw1-swap-j $ALL --rank 32 --epochs 4 --answerable-weight 1.0 $J &
  val all-r16-aw1-swap-j $ALL --answerable-weight 1.0 $J &
  ;;
*) echo "unknown round $round"; exit 2 ;;
esac
wait
tail -qn 1 /tmp/fit-*.log
cat /tmp/fit-*.json
