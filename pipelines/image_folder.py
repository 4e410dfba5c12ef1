"""A user's images in class folders, decoded once, as train/validation/test.

  DIR/train/<class>/*         required; at least two classes
  DIR/test/<class>/*          required; every class must be in train
  DIR/validation/<class>/*    optional; without it data.validation_fraction
                              of each train class is held out by file name
                              (image_datasets.hold_out), the same every run

Class names are the train folder names, sorted; label i is class_names[i].
Files may sit in subfolders of a class folder, symlinked ones included (each
real folder read once); names starting with "." are ignored. Every other
file must be a JPEG, PNG, BMP or GIF (first frame; WebP also decodes; JPEG
XL is refused: its size cannot be read before decoding), grey or colour,
with or without alpha, of at most data.max_image_pixels pixels (read from
its header before decoding). EXIF orientation is not applied (TF's decoders
ignore it): a photo stored sideways with an orientation tag is learnt
sideways; rotate such files beforehand (e.g. `exiftran -ai` or PIL's
ImageOps.exif_transpose). They are decoded once onto the configured canvas
(image_cache / image_resize) and cached in <data.cache_dir>/image_folder/;
each later run reads the files only to hash them. Unusable data raises
image_datasets.ImageDataError naming the file or folder; data.skip_bad=True
skips (and counts) files that do not decode, are too large or cannot be read
(a broken symlink) instead.
"""

import os
import unicodedata
from typing import Any, Iterator, NamedTuple

from absl import logging

from wsram_tf.pipelines import image_cache
from wsram_tf.pipelines import image_datasets
from wsram_tf.pipelines import image_header

ImageDataError = image_datasets.ImageDataError
SPLITS = ("train", "validation", "test")
OPTIONAL_SPLITS = ("validation",)


class ImageFile(NamedTuple):
  split: str  # "train", "validation" or "test".
  class_name: str
  path: str  # Relative to the split folder: "<class>/<file>".


class Listing(NamedTuple):
  root: str
  class_names: tuple[str, ...]  # Sorted train class folders.
  files: tuple[ImageFile, ...]  # Sorted by split, then path.
  has_validation: bool


def shown(name: str) -> str:
  # NFC and NFD "café" print alike but are two folder names: spell out one
  # that is not NFC.
  return repr(name) + ("" if unicodedata.is_normalized("NFC", name)
                       else f" (decomposed: {ascii(name)})")


def _visible(names: list[str]) -> list[str]:
  return sorted(n for n in names if not n.startswith("."))


def _class_files(folder: str) -> list[str]:
  """Visible files under `folder`, relative to it, sorted.

  Symlinked sub-folders are followed (a user links images in rather than
  copying them); a folder reached twice, as by a link to its parent, is
  read once.
  """
  found, seen = [], set()
  for parent, dirs, files in os.walk(folder, followlinks=True):
    real = os.path.realpath(parent)
    if real in seen:
      dirs[:] = []
      continue
    seen.add(real)
    dirs[:] = _visible(dirs)
    found += [os.path.relpath(os.path.join(parent, f), folder)
              for f in _visible(files)]
  return sorted(found)


def scan(root: str) -> Listing:
  """Lists DIR/<split>/<class>/* and checks the layout (not the pictures)."""
  root = os.path.abspath(os.path.expanduser(root))
  if not os.path.isdir(root):
    raise ImageDataError(f"data.dir={root!r}: no such folder")
  files, classes = [], {}
  for split in SPLITS:
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
      if split in OPTIONAL_SPLITS:
        continue
      raise ImageDataError(f"{split_dir}: missing; expected {split}/<class>/* "
                           f"folders under data.dir")
    entries = _visible(os.listdir(split_dir))
    strays = [e for e in entries
              if not os.path.isdir(os.path.join(split_dir, e))]
    if strays:
      raise ImageDataError(
          f"{os.path.join(split_dir, strays[0])}: a file directly in {split}/; "
          "images go in one folder per class, e.g. "
          f"{split}/<class>/{strays[0]}")
    if not entries:
      raise ImageDataError(f"{split_dir}: no class folders")
    classes[split] = entries
    for class_name in entries:
      class_dir = os.path.join(split_dir, class_name)
      names = _class_files(class_dir)
      if not names:
        raise ImageDataError(f"{class_dir}: empty class folder (no images)")
      files += [ImageFile(split, class_name, os.path.join(class_name, n))
                for n in names]
  if len(classes["train"]) < 2:
    raise ImageDataError(
        f"{os.path.join(root, 'train')}: one class folder "
        f"({classes['train'][0]!r}); a classifier needs at least two")
  for split in ("validation", "test"):
    for class_name in classes.get(split, ()):
      if class_name not in classes["train"]:
        raise ImageDataError(
            f"{os.path.join(root, split, class_name)}: class "
            f"{shown(class_name)} has no folder in "
            f"{os.path.join(root, 'train')} (train has "
            f"{', '.join(shown(c) for c in classes['train'])})")
  return Listing(root, tuple(classes["train"]), tuple(files),
                 "validation" in classes)


def _read(root: str, image_file: ImageFile) -> bytes:
  path = os.path.join(root, image_file.split, image_file.path)
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise ImageDataError(f"{path}: cannot be read ({e})") from e


def _items(listing: Listing) -> Iterator[image_cache.Item]:
  labels = {name: i for i, name in enumerate(listing.class_names)}
  for image_file in listing.files:
    yield image_cache.Item(
        os.path.join(image_file.split, image_file.path),
        labels[image_file.class_name], image_file.split,
        _read(listing.root, image_file))


def unreadable(listing: Listing, skip_bad: bool) -> tuple[ImageFile, ...]:
  """The files of `listing` that cannot be opened (a broken symlink, no
  permission): an ImageDataError naming the first, or with `skip_bad` the
  list of them, to be skipped."""
  found = tuple(f for f in listing.files
                if not os.access(os.path.join(listing.root, f.split, f.path),
                                 os.R_OK))
  if found and not skip_bad:
    path = os.path.join(listing.root, found[0].split, found[0].path)
    what = ("a broken symlink" if os.path.islink(path)
            and not os.path.exists(path) else "not readable")
    raise ImageDataError(f"{path}: {what}; fix or remove it, or set "
                         "config.data.skip_bad=True to skip such files")
  return found


def decode_folder(listing: Listing, settings: image_cache.Settings,
                  cache_dir: str, skip_bad: bool,
                  max_pixels: int = image_header.DEFAULT_MAX_PIXELS
                  ) -> image_cache.DecodedImages:
  """The cached canvases of `listing`, decoding only what changed."""
  path = image_cache.cache_file(cache_dir, "image_folder",
                                os.path.basename(listing.root), settings,
                                listing.root)
  key = image_cache.cache_key(settings, [
      listing.class_names,
      [[f.split, f.path, image_cache.digest(_read(listing.root, f))]
       for f in listing.files], max_pixels])
  cached = image_cache.load(path)
  if cached is not None and cached.key == key:
    logging.info("Images of %s: from the cache %s", listing.root, path)
    decoded = cached
  else:
    decoded = image_cache.decode_all(_items(listing), settings, key, skip_bad,
                                     reuse=cached, location=listing.root,
                                     max_pixels=max_pixels)
    image_cache.save(path, decoded)
  if len(decoded.bad_names) and not skip_bad:
    raise ImageDataError(
        f"{os.path.join(listing.root, decoded.bad_names[0])}: "
        f"{image_cache.problem(decoded.bad_reasons[0])}; fix or remove it, or "
        "set config.data.skip_bad=True to skip such files")
  return decoded


def _check_classes_kept(listing: Listing,
                        decoded: image_cache.DecodedImages) -> None:
  """Every class folder keeps an image after skipping undecodable ones."""
  kept = {(s, n.split(os.sep)[1])  # Names are "<split>/<class>/...".
          for s, n in zip(decoded.splits, decoded.names)}
  for image_file in listing.files:
    split, class_name = image_file.split, image_file.class_name
    if (split, class_name) not in kept:
      raise ImageDataError(f"{os.path.join(listing.root, split, class_name)}: "
                           "no image in this class folder decodes")


def make_datasets(config: Any) -> image_datasets.ImageDatasets:
  """The pipelines over the class folders of config.data.dir."""
  data = config.data
  settings = image_cache.settings_from_config(data)
  listing = scan(data.dir)
  broken = unreadable(listing, data.skip_bad)
  listing = listing._replace(files=tuple(f for f in listing.files
                                         if f not in broken))
  decoded = decode_folder(listing, settings, data.cache_dir, data.skip_bad,
                          image_cache.max_pixels_from_config(data))
  _check_classes_kept(listing, decoded)
  # Held out by the path inside train/ ("<class>/<file>"): file names only.
  names = [n.split(os.sep, 1)[1] for n in decoded.names]
  rows = image_datasets.choose_splits(data, decoded.splits, names,
                                      decoded.labels, listing.has_validation)
  unread = [os.path.join(f.split, f.path) for f in broken]
  skipped = [os.path.join(listing.root, n)
             for n in list(decoded.bad_names) + unread]
  if skipped:
    logging.warning("Skipped %d files that do not decode, are too large or "
                    "cannot be read (data.skip_bad): %s", len(skipped),
                    ", ".join(skipped[:10]))
  return image_datasets.make_datasets(
      config, decoded.images, decoded.labels, rows, listing.class_names,
      f"folder:{listing.root}", skipped,
      {**image_datasets.digests_of(decoded),
       **{name: "unreadable" for name in unread}})
