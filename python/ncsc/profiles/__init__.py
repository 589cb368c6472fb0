"""Link profiles: the whole link described once, as data (``profiles/*.yml``).

A profile names the code (k, n), the modulation and demapper, the SNR convention, the
LDPC decoder settings, the codec model and, for the burst PHY, the pulse shape and
detector threshold. Everything else derives from it (bits per symbol, code rate, burst
lengths). ``load_profile("ota-16qam")`` or ``load_profile("path/to/my.yml")``; an invalid
file raises :class:`ProfileError` naming the file, the field and what is allowed, like
gr-satellites' SatYAML. Explicit arguments of a block still override its profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PROFILE = "paper-awgn"
DEFAULT_OTA_PROFILE = "ota-16qam"

# allowed values: the modules' own lists, restated here only so that loading a profile needs
# neither numba nor torch; tests/test_profiles.py checks that they agree
_MODULATIONS = ("qpsk", "16qam", "64qam")
_DEMAPPERS = ("exact", "maxlog")
_SNR_TYPES = ("ebn0", "esn0")
_ALGORITHMS = ("sum-product", "normalized-min-sum", "offset-min-sum", "min-sum")
_METRICS = ("mse", "ms-ssim")

_SCHEMA = {
    "name": str, "description": str, "code": dict, "modulation": str, "demapper": str, "snr_type": str,
    "ldpc": dict, "codec": dict, "burst": dict,
}
_REQUIRED = ("name", "code", "modulation")
_SECTIONS = {
    "code": {"k": int, "n": int},
    "ldpc": {"algorithm": str, "max_iter": int, "head_repeat": int},
    "codec": {"model": str, "max_pixels": int, "slice_rows": int, "slice_cols": int},
    "burst": {"sps": int, "rolloff": float, "threshold": float, "amplitude": float, "guard": int},
}


class ProfileError(ValueError):
    """A link profile that cannot be used, with the file and field at fault."""


@dataclass(frozen=True)
class BurstSettings:
    sps: int = 4
    rolloff: float = 0.35
    threshold: float = 0.6
    amplitude: float = 0.5
    guard: int = 256


@dataclass(frozen=True)
class Profile:
    name: str
    k: int
    n: int
    modulation: str
    description: str = ""
    demapper: str = "exact"
    snr_type: str = "ebn0"
    algorithm: str = "sum-product"
    max_iter: int = 50
    model: str = "mse"
    max_pixels: int | None = None
    slices: tuple[int, int] | None = None  # (latent rows, cols) per slice: graceful degradation
    # a sliced image's head blocks go as this many copies of their codeword, which the LDPC
    # decoder adds (LLRs) before decoding: repetition rate matching, +3 dB for 2; the stream
    # then holds its head once (bitstream.FLAG_HEAD_ONCE) instead of twice
    head_repeat: int = 1
    burst: BurstSettings = field(default_factory=BurstSettings)
    source: str = ""

    @property
    def bits_per_symbol(self) -> int:
        from ..modulation import bits_per_symbol

        return bits_per_symbol(self.modulation)

    @property
    def code_rate(self) -> float:
        return self.k / self.n

    @property
    def symbols_per_codeword(self) -> int:
        return -(-self.n // self.bits_per_symbol)


def list_profiles() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yml"))


def _path_for(spec: str | os.PathLike) -> Path:
    p = Path(spec)
    if p.suffix in (".yml", ".yaml") or p.exists():
        return p
    cand = HERE / f"{spec}.yml"
    if not cand.exists():
        raise ProfileError(f"no link profile {spec!r}; shipped: {', '.join(list_profiles())} "
                           f"(or give a path to a .yml file)")
    return cand


def _typed(where: str, key: str, value, kind):
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ProfileError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    return value


def parse(data, where: str = "<profile>") -> Profile:
    """Validate a profile's mapping; every error names the field."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile is a mapping of fields, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_SCHEMA))
    if unknown:
        raise ProfileError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_SCHEMA)}")
    for key in _REQUIRED:
        if key not in data:
            raise ProfileError(f"{where}: missing required field {key!r}")
    vals = {key: _typed(where, key, data[key], kind) for key, kind in _SCHEMA.items() if key in data}
    for sec, fields in _SECTIONS.items():
        body = vals.get(sec, {})
        extra = sorted(set(body) - set(fields))
        if extra:
            raise ProfileError(f"{where}: unknown field(s) {', '.join(f'{sec}.{e}' for e in extra)}; "
                               f"allowed: {', '.join(fields)}")
        vals[sec] = {k: _typed(where, f"{sec}.{k}", v, fields[k]) for k, v in body.items()}
    for key, choices in (("modulation", _MODULATIONS), ("demapper", _DEMAPPERS), ("snr_type", _SNR_TYPES)):
        if key in vals and vals[key] not in choices:
            raise ProfileError(f"{where}: {key} {vals[key]!r} is not one of {', '.join(choices)}")
    code = vals["code"]
    if "k" not in code or "n" not in code:
        raise ProfileError(f"{where}: code needs k and n")
    k, n = code["k"], code["n"]
    if k <= 0 or k % 8 or n <= k:
        raise ProfileError(f"{where}: code k={k}, n={n}: k must be a positive multiple of 8 and n > k")
    ldpc, codec, burst = vals["ldpc"], vals["codec"], vals["burst"]
    if ldpc.get("algorithm", "sum-product") not in _ALGORITHMS:
        raise ProfileError(f"{where}: ldpc.algorithm {ldpc['algorithm']!r} is not one of {', '.join(_ALGORITHMS)}")
    if not 1 <= ldpc.get("max_iter", 50) <= 1000:
        raise ProfileError(f"{where}: ldpc.max_iter must be within 1..1000")
    if codec.get("model", "mse") not in _METRICS:
        raise ProfileError(f"{where}: codec.model {codec['model']!r} is not one of {', '.join(_METRICS)}")
    if codec.get("max_pixels", 1) <= 0:
        raise ProfileError(f"{where}: codec.max_pixels must be positive")
    if ("slice_rows" in codec) != ("slice_cols" in codec):
        raise ProfileError(f"{where}: codec.slice_rows and codec.slice_cols go together")
    slices = (codec["slice_rows"], codec["slice_cols"]) if "slice_rows" in codec else None
    if slices is not None and not all(0 < v < 256 for v in slices):
        raise ProfileError(f"{where}: codec.slice_rows and slice_cols must be within 1..255 latent positions")
    head_repeat = ldpc.get("head_repeat", 1)
    if not 1 <= head_repeat <= 4:  # fec.MAX_REPEAT
        raise ProfileError(f"{where}: ldpc.head_repeat must be within 1..4")
    if head_repeat > 1 and slices is None:
        raise ProfileError(f"{where}: ldpc.head_repeat protects a sliced stream's head: it needs codec.slice_rows "
                           "and slice_cols")
    b = BurstSettings(**burst)
    if b.sps < 2 or not 0 <= b.rolloff <= 1 or not 0 < b.threshold < 1 or not 0 < b.amplitude <= 1 or b.guard < 0:
        raise ProfileError(f"{where}: burst settings out of range (sps >= 2, 0 <= rolloff <= 1, "
                           f"0 < threshold < 1, 0 < amplitude <= 1, guard >= 0): {burst}")
    return Profile(name=vals["name"], k=k, n=n, modulation=vals["modulation"],
                   description=vals.get("description", ""), demapper=vals.get("demapper", "exact"),
                   snr_type=vals.get("snr_type", "ebn0"), algorithm=ldpc.get("algorithm", "sum-product"),
                   max_iter=ldpc.get("max_iter", 50), model=codec.get("model", "mse"),
                   max_pixels=codec.get("max_pixels"), slices=slices, head_repeat=head_repeat, burst=b,
                   source=where)


def load_profile(spec: str | os.PathLike | Profile | None = None) -> Profile:
    """A shipped profile by name, a profile file by path, or a Profile as it is."""
    if isinstance(spec, Profile):
        return spec
    import yaml

    path = _path_for(spec or DEFAULT_PROFILE)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ProfileError(f"cannot read link profile {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    prof = parse(data, str(path))
    if path.parent == HERE and prof.name != path.stem:
        raise ProfileError(f"{path}: name {prof.name!r} differs from the file name {path.stem!r}")
    return prof


def link_profile(profile=None, default: str = DEFAULT_PROFILE) -> Profile:
    """The profile a block was given (a name, a path or a Profile), or ``default``: blocks take
    every link setting they are not given explicitly from it."""
    return load_profile(profile or default)
