"""The six training methods of the paper (Fig. 2) as one typed record each."""

from typing import NamedTuple


class Variant(NamedTuple):
  name: str
  estimator: str  # "var" (variational bound, eq. 3-5) or "wsram" (eq. 8, 14).
  inference_net: bool  # +q: proposal from the inference network, not the prior.
  control_variates: bool  # +c: learned baseline (VAR) or eq. 16-17 (WS-RAM).


VARIANTS = {
    "var": Variant("var", "var", False, False),
    "var_c": Variant("var_c", "var", False, True),
    "wsram": Variant("wsram", "wsram", False, False),
    "wsram_c": Variant("wsram_c", "wsram", False, True),
    "wsram_q": Variant("wsram_q", "wsram", True, False),
    "wsram_qc": Variant("wsram_qc", "wsram", True, True),
}

LABELS = {
    "var": "VAR", "var_c": "VAR+c", "wsram": "WS-RAM", "wsram_c": "WS-RAM+c",
    "wsram_q": "WS-RAM+q", "wsram_qc": "WS-RAM+q+c",
}


def parse_variant(name: str) -> Variant:
  """Returns the Variant called `name`; a typo lists the valid names."""
  if name not in VARIANTS:
    raise ValueError(f"config.variant: unknown variant {name!r}; valid: "
                     f"{', '.join(VARIANTS)}.")
  return VARIANTS[name]
