"""Corpus BLEU-1..4 of captions against all references (paper Table 2).

Scores come from sacrebleu's corpus BLEU with `max_ngram_order = n` for each n,
i.e. the cumulative BLEU-n of the captioning literature (geometric mean of the
1..n-gram precisions times the brevity penalty, closest reference length),
on a 0..100 scale.

Choices, so that runs are comparable:
- tokenize="none": captions are already normalised (lowercase, punctuation
  stripped, see `pipelines.flickr8k.normalize_caption`), so words are split on
  whitespace only and no tokenizer can split them differently than the
  vocabulary did.
- smooth_method="none": no smoothing, as in multi-bleu.perl / coco-caption, the
  tools behind published Flickr8k numbers. An empty output scores 0.
- Images may have different numbers of references; missing ones are passed to
  sacrebleu as None, which it ignores.
"""

from typing import Sequence

import sacrebleu

MAX_ORDER = 4


def corpus_bleu(hypotheses: Sequence[str],
                references: Sequence[Sequence[str]]) -> dict[str, float]:
  """{"bleu_1": .., .., "bleu_4": ..} of `hypotheses[i]` vs `references[i]`."""
  if len(hypotheses) != len(references):
    raise ValueError(f"corpus_bleu: {len(hypotheses)} hypotheses but "
                     f"{len(references)} reference lists.")
  for i, refs in enumerate(references):
    if isinstance(refs, str) or not refs:
      raise ValueError(f"corpus_bleu: references[{i}] must be a non-empty list "
                       f"of strings, got {refs!r}.")
  hypotheses = [" ".join(h.split()) for h in hypotheses]
  # sacrebleu wants reference streams: stream k holds every image's k-th one.
  num_streams = max(len(refs) for refs in references)
  streams = [[" ".join(refs[k].split()) if k < len(refs) else None
              for refs in references] for k in range(num_streams)]
  scores = {}
  for n in range(1, MAX_ORDER + 1):
    metric = sacrebleu.metrics.BLEU(max_ngram_order=n, tokenize="none",
                                    smooth_method="none")
    scores[f"bleu_{n}"] = float(metric.corpus_score(hypotheses, streams).score)
  return scores
