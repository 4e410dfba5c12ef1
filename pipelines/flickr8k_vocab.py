"""Caption words <-> ids for Flickr8k (docs/design.md §5).

Built from training captions only (`Vocabulary.build`), saved as `vocab.json`
beside the feature cache and copied beside trained and exported models; its
`hash` tells the feature cache when the caption ids must be re-encoded.
"""

import collections
import hashlib
import json
from typing import Iterable, Sequence

# The special words and their ids, defined here once: the captioner, its
# decoding and its export read them from this module.
SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")
PAD, START, END, UNK = range(len(SPECIALS))


class Vocabulary:
  """Words <-> ids; ids 0..3 are <pad>, <start>, <end>, <unk>."""
  SPECIALS = SPECIALS
  PAD, START, END, UNK = PAD, START, END, UNK

  def __init__(self, words: Sequence[str]):
    if tuple(words[:4]) != self.SPECIALS:
      raise ValueError(f"Vocabulary must start with {self.SPECIALS}.")
    self.words = tuple(words)
    self.ids = {w: i for i, w in enumerate(self.words)}

  @classmethod
  def build(cls, captions: Iterable[str], min_count: int) -> "Vocabulary":
    """Words seen >= min_count times, most frequent first (ties by spelling)."""
    counts = collections.Counter(w for c in captions for w in c.split())
    kept = sorted((w for w, n in counts.items()
                   if n >= min_count and w not in cls.SPECIALS),
                  key=lambda w: (-counts[w], w))
    return cls(cls.SPECIALS + tuple(kept))

  def __len__(self) -> int:
    return len(self.words)

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocabulary) and self.words == other.words

  @property
  def hash(self) -> str:
    return hashlib.sha256("\n".join(self.words).encode()).hexdigest()[:16]

  def save(self, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"hash": self.hash, "words": self.words}, f, indent=0)

  @classmethod
  def load(cls, path: str) -> "Vocabulary":
    with open(path, encoding="utf-8") as f:
      return cls(json.load(f)["words"])

  def encode(self, caption: str, length: int) -> list[int]:
    """<start> words <end> <pad>..., `length` ids; long captions keep <end>."""
    ids = [self.ids.get(w, self.UNK) for w in caption.split()][:length - 2]
    ids = [self.START] + ids + [self.END]
    return ids + [self.PAD] * (length - len(ids))

  def decode(self, ids: Iterable[int]) -> str:
    """Words up to the first <end>, without <start> and <pad>."""
    words = []
    for i in ids:
      if int(i) == self.END:
        break
      if int(i) not in (self.START, self.PAD):
        words.append(self.words[int(i)])
    return " ".join(words)
