"""Parsing of the preset string after the colon: "wsram_qc,tiny"."""

from typing import NamedTuple, Sequence


class Preset(NamedTuple):
  base: str  # The one base preset (a variant or a setting).
  modifiers: tuple  # Modifiers in the order given.

  @property
  def name(self) -> str:
    return ",".join((self.base,) + self.modifiers)


def parse(preset: str, config_file: str, bases: Sequence[str],
          modifiers: Sequence[str], default: str) -> Preset:
  """Splits `preset` into at most one base and modifiers; typos list names."""
  names = [n.strip() for n in (preset or default).split(",") if n.strip()]
  for name in names:
    if name not in tuple(bases) + tuple(modifiers):
      raise ValueError(
          f"{config_file}: unknown preset {name!r}; valid presets are "
          f"{', '.join(bases)} and modifiers {', '.join(modifiers)} "
          f"(combine with commas, e.g. '{default},{modifiers[0]}').")
  chosen = [n for n in names if n not in modifiers]
  if len(chosen) > 1:
    raise ValueError(f"{config_file}: pick at most one of {chosen}.")
  return Preset(chosen[0] if chosen else default,
                tuple(n for n in names if n in modifiers))
