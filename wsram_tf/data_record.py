"""What a run was trained on, so that a re-run on other data is refused.

A fingerprint is a plain dict the task's data carries
(`data.fingerprint`), built by the pipeline that read it:

  {"source": "folder:/data/pets",      where it came from (shown, not compared:
                                        the same data may move, and data paths
                                        are safe to change in a re-run)
   "classes": ["cat", "dog"] or None,   label i is classes[i]
   "items": {name: sha256, ...}}        every example file (or array, or
                                        split list) by name, with the hash of
                                        its contents

The pipelines hash their inputs anyway (the image cache keys every file by
its sha256, MNIST is checked against reference checksums, the caption cache
hashes every image): the fingerprint repeats those hashes, never reads a
file again. `check` compares a new fingerprint with WORKDIR/FINGERPRINT_FILE
(reading only) and raises naming what changed; `write` stores it when the
run starts, after every check has passed.
"""

import json
import os
import unicodedata
from typing import Optional

from wsram_tf import atomic
from wsram_tf import workdir as workdir_lib

FINGERPRINT_FILE = "data_fingerprint.json"
EXAMPLES = 3  # Names shown per kind of change: enough to recognise it.


def shown(name: str) -> str:
  """repr(name), spelt out if it is not NFC: NFC and NFD "café" print alike
  but are two class folders."""
  if unicodedata.is_normalized("NFC", name):
    return repr(name)
  return f"{name!r} (decomposed: {ascii(name)})"


def _listed(names, total: Optional[int] = None) -> str:
  names = sorted(names)
  total = len(names) if total is None else total
  text = ", ".join(shown(n) for n in names[:EXAMPLES])
  return text + (f" and {total - EXAMPLES} more" if total > EXAMPLES else "")


def _renamed(old: dict, new: dict, removed: set, added: set) -> list:
  """(old, new) class pairs whose files hold the same contents: a folder
  renamed, not a class dropped and another added."""
  def contents(items, name):  # Folder items are "<split>/<class>/<file>".
    return sorted(d for n, d in items.items() if n.split("/")[1:2] == [name])
  pairs = []
  for gone in sorted(removed):
    before = contents(old, gone)
    for came in sorted(added - {n for _, n in pairs}):
      if before and before == contents(new, came):
        pairs.append((gone, came))
        break
  return pairs


def differences(old: dict, new: dict) -> list:
  """What differs between fingerprints `old` and `new`, in words (empty if
  the data is the same)."""
  found = []
  old_classes, new_classes = old.get("classes"), new.get("classes")
  old_items, new_items = old.get("items", {}), new.get("items", {})
  if old_classes != new_classes:
    removed = set(old_classes or ()) - set(new_classes or ())
    added = set(new_classes or ()) - set(old_classes or ())
    renamed = _renamed(old_items, new_items, removed, added)
    removed -= {o for o, _ in renamed}
    added -= {n for _, n in renamed}
    if renamed:
      found.append("classes renamed: " + ", ".join(
          f"{shown(o)} -> {shown(n)}" for o, n in renamed))
    if added:
      found.append(f"classes added: {_listed(added)}")
    if removed:
      found.append(f"classes removed: {_listed(removed)}")
    if not (renamed or added or removed):
      found.append(f"class order changed: {old_classes} -> {new_classes}")
  changed = [n for n in new_items if n in old_items
             and new_items[n] != old_items[n]]
  for what, names in (("changed", changed),
                      ("added", set(new_items) - set(old_items)),
                      ("removed", set(old_items) - set(new_items))):
    if names:
      found.append(f"{len(names)} files {what} ({_listed(names)})")
  return found


def read(workdir: str) -> Optional[dict]:
  """The fingerprint stored in `workdir`, or None if there is none."""
  path = os.path.join(workdir, FINGERPRINT_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      stored = json.load(f)
    if not isinstance(stored, dict) or not isinstance(stored.get("items"),
                                                      dict):
      raise ValueError("not an object with an 'items' object")
    return stored
  except (OSError, ValueError) as e:
    raise workdir_lib.WorkdirError(
        f"Cannot read {path} ({e}): it records the data the run in {workdir} "
        "was trained on. Restore it or use another --workdir.") from e


def check(workdir: str, fingerprint: Optional[dict],
          stored_classes: Optional[list] = None) -> None:
  """Raises WorkdirError naming what changed if `workdir` holds a run on
  other data than `fingerprint`.

  `stored_classes`: for a run written before fingerprints were stored, the
  class names it recorded elsewhere (data_info.json), compared alone.
  """
  if fingerprint is None:
    return
  stored = read(workdir)
  if stored is None and stored_classes is not None:
    stored = {"classes": list(stored_classes), "items": {}}
    fingerprint = {"classes": fingerprint.get("classes"), "items": {}}
  if stored is None:
    return
  found = differences(stored, fingerprint)
  if found:
    raise workdir_lib.WorkdirError(
        f"{workdir} holds a run trained on other data than "
        f"{fingerprint.get('source') or 'this data'} "
        f"({os.path.join(workdir, FINGERPRINT_FILE)}): "
        + "; ".join(found) + ". Its weights and class names belong to the "
        "old data; nothing was written. Changing or growing the data is a new "
        "run: pass a new --workdir (or restore the data).")


def write(workdir: str, fingerprint: Optional[dict]) -> None:
  if fingerprint is not None:
    atomic.write_json(os.path.join(workdir, FINGERPRINT_FILE), fingerprint)
