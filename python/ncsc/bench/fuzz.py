"""Fuzz the input paths: codec streams, deframer blocks and burst headers, each case in a child process.

``python -m gnuradio.ncsc.bench.fuzz [--cases N] [--quick]``. The cases run in a child
process, so a segmentation fault or an abort is counted (``crashes``) instead of ending
the run; a case that takes longer than ``--timeout`` is a hang, the child is killed and
the next case goes on in a new child. Every case must end in a decoded image or a clean
refusal (``BitstreamError`` / ``ValueError``); anything else is ``uncaught``. The last
line is one JSON object: cases, crashes, hangs, uncaught, max_decode_s, max_rss_mb, baseline_rss_mb
(the children's peak right after their start-up, before any case).

Kinds of cases (a case's kind and mutation follow from ``--seed`` and its index):
codec (bit flips, truncation, header fields with the CRC recomputed, payload mutations
with the CRC recomputed, absurd sizes and lengths), deframer (forged blocks with valid
CRCs, inconsistent hints, short arrays, then the image record) and burst (bursts with
forged headers, then a good burst that must still be found).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

KINDS = ("codec", "deframer", "burst")
_HDR = struct.Struct(">4sBBBBBBHHHHII")


# -- case generation (the child) ----------------------------------------------------------------
def forge_stream(head_fields: list, payload: bytes) -> bytes:
    """An NCSC stream with any header fields, both CRCs right: what a forger or an unlucky
    corruption that keeps the CRCs produces (bitstream.pack refuses inconsistent fields)."""
    head = _HDR.pack(*head_fields)
    return head + struct.pack(">I", zlib.crc32(head)) + payload + struct.pack(">I", zlib.crc32(payload))


def mutate_stream(base: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One mutated NCSC stream: (what was done, bytes)."""
    fields = list(_HDR.unpack_from(base))
    hsize = _HDR.size + 4
    len_z, len_y = fields[-2], fields[-1]
    z, y = base[hsize:hsize + len_z], base[hsize + len_z:hsize + len_z + len_y]
    op = int(rng.integers(9))
    if op == 0:  # bit flips anywhere
        buf = bytearray(base)
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(buf) * 8))
            buf[i // 8] ^= 1 << (i % 8)
        return "bitflip", bytes(buf)
    if op == 1:  # truncation
        return "truncate", base[: int(rng.integers(len(base)))]
    if op == 2:  # one header field at random, CRCs recomputed
        i = int(rng.integers(1, len(fields)))
        limits = [0, 255, 255, 255, 255, 255, 255, 65535, 65535, 65535, 65535, 1 << 32, 1 << 32]
        fields[i] = int(rng.integers(0, limits[i]))
        return f"header[{i}]", forge_stream(fields, z + y)
    if op == 3:  # absurd size with a consistent latent shape
        h, w = (int(v) for v in rng.choice([1, 63, 64, 2048, 2049, 4096, 8192], 2))
        fields[7:11] = [h, w, -(-h // 64), -(-w // 64)]
        return f"size {w}x{h}", forge_stream(fields, z + y)
    if op == 4:  # byte mutations of z or y, payload CRC recomputed
        in_z = rng.random() < 0.5
        part = bytearray(z if in_z else y)
        for _ in range(int(rng.integers(1, 6))):
            if part:
                part[int(rng.integers(len(part)))] = int(rng.integers(256))
        zz, yy = (bytes(part), y) if in_z else (z, bytes(part))
        return f"{'z' if in_z else 'y'} bytes", forge_stream(fields, zz + yy)
    if op == 5:  # z replaced by a run of 0xFF / random bytes / nothing
        choice = int(rng.integers(3))
        n = int(rng.choice([0, 4, 8, 64, 4096, 1 << 20]))
        zz = b"\xff" * n if choice == 0 else rng.bytes(n) if choice == 1 else b""
        fields[-2] = len(zz)
        return f"z {['0xff', 'random', 'empty'][choice]} x{n}", forge_stream(fields, zz + y)
    if op == 6:  # y replaced
        n = int(rng.choice([0, 3, 4, 16, 1024]))
        yy = rng.bytes(n) if rng.random() < 0.5 else b"\xff" * n
        fields[-1] = len(yy)
        return f"y x{n}", forge_stream(fields, z + yy)
    if op == 7:  # lengths that disagree with the payload
        fields[-2], fields[-1] = int(rng.integers(0, 1 << 32)), int(rng.integers(0, 1 << 32))
        return "lengths", forge_stream(fields, z + y)
    # the reproduction: a big image, empty z, 4 zero bytes of y
    fields[7:13] = [8192, 8192, 128, 128, 0, 4]
    return "8192x8192 empty z", forge_stream(fields, b"\0" * 4)


SLICED_PAGE = 40


def mutate_sliced(base: bytes, rng: np.random.Generator) -> tuple[str, bytes, list, int | None]:
    """One mutated sliced (version 2) stream: (what, bytes, lost pages, page hint)."""
    from ..codec import bitstream as bs

    buf = bytearray(base)
    n_pages = -(-len(buf) // SLICED_PAGE)
    op = int(rng.integers(6))
    if op == 0:  # bit flips anywhere
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(buf) * 8))
            buf[i // 8] ^= 1 << (i % 8)
        return "bitflip", bytes(buf), [], None
    if op == 1:
        return "truncate", bytes(buf[: int(rng.integers(len(buf)))]), [], None
    if op == 2:  # pages lost, as the deframer hands them on (head pages too, sometimes)
        lost = sorted({int(v) for v in rng.integers(0, n_pages, int(rng.integers(1, n_pages + 1)))})
        for j in lost:
            buf[j * SLICED_PAGE : (j + 1) * SLICED_PAGE] = bytes(len(buf[j * SLICED_PAGE : (j + 1) * SLICED_PAGE]))
        return f"lost {len(lost)}/{n_pages} pages", bytes(buf), lost, SLICED_PAGE
    if op == 3:  # a field of the fixed head at random, its CRC recomputed (both copies)
        fields = list(bs._HDR2.unpack_from(buf))
        i = int(rng.integers(1, len(fields)))
        fields[i] = int(rng.integers(0, 1 << (8 * bs._HDR2.size // len(fields) if i < 7 else 16)))
        try:
            fixed = bs._HDR2.pack(*fields)
        except struct.error:
            return "head field (unpackable)", bytes(buf), [], None
        buf[: bs.HEAD2_FIXED] = fixed + struct.pack(">I", zlib.crc32(fixed))
        return f"head[{i}]", bytes(buf), [], None
    if op == 4:  # slice lengths at random, the head's CRC recomputed
        n = bs._HDR2.unpack_from(buf)[-1]
        len_z = bs._HDR2.unpack_from(buf)[11]
        start = bs.HEAD2_FIXED
        for k in range(n):
            struct.pack_into(">H", buf, start + 2 * k, int(rng.integers(0, 1 << 16)))
        body = bytes(buf[start : start + 2 * n + len_z])
        struct.pack_into(">I", buf, start + 2 * n + len_z, zlib.crc32(body))
        return "slice lengths", bytes(buf), [], None
    return "page mismatch", bytes(buf), [1], SLICED_PAGE * int(rng.integers(2, 5))


def _codec_case(codec, bases: list[bytes], rng) -> str:
    from ..codec.bitstream import BitstreamError, is_sliced

    base = bases[int(rng.integers(len(bases)))]
    lost, page = [], None
    if is_sliced(base[:5]):
        what, data, lost, page = mutate_sliced(base, rng)
    else:
        what, data = mutate_stream(base, rng)
    try:
        codec.decompress(data, lost_pages=lost, page=page)
        return "decoded"
    except (BitstreamError, ValueError):
        return "refused"


def _deframer_case(rng) -> str:
    from ..framing.frame import HEADER_BYTES, BlockError, Framer, Reassembler, scramble
    from ..imaging import ImageReceiver

    k = 1536
    fr = Framer(k)
    ra = Reassembler(timeout=1.0, max_images=4)
    recs = []
    now = 0.0
    for _ in range(int(rng.integers(1, 40))):
        now += float(rng.random())
        op = int(rng.integers(5))
        if op == 0:  # a good block of a small image
            data = rng.bytes(int(rng.integers(1, 600)))
            blocks = fr.frame(int(rng.integers(0, 4)), data)
            bits = blocks[int(rng.integers(len(blocks)))]
        elif op == 1:  # a forged block with a valid CRC and random header fields
            body = struct.pack(">HHHH", *(int(v) for v in rng.integers(0, 65536, 4)))
            body += rng.bytes(k // 8 - 4 - HEADER_BYTES)
            body += struct.pack(">I", zlib.crc32(body))
            bits = scramble(np.unpackbits(np.frombuffer(body, np.uint8)))
        elif op == 2:  # short or odd arrays
            bits = rng.integers(0, 2, int(rng.integers(0, 80)), dtype=np.uint8)
        else:  # a failed block with a hint, sane or not
            bits = rng.integers(0, 2, k, dtype=np.uint8)
        hint = {}
        if op >= 3:
            pick = [0, 1, 3, 65535, 65536, -1, 10**9, "x", None, 2.5]
            hint = {key: pick[int(rng.integers(len(pick)))] if rng.random() < 0.5 else int(rng.integers(0, 8))
                    for key in ("image_id", "block_index", "block_count")}
        try:
            recs += ra.add(bits, hint, now=now)
        except BlockError:
            return "refused"
    recs += ra.flush()
    rx = ImageReceiver(lambda metric: None, None)
    for rec in recs:
        meta = dict(rec.pop("meta", {}), **rec)
        junk = [None, "", "a" * 300, "x\0y", -5, 0, 2.5, {"a": 1}, [1], 70000]
        for key in ("image_id", "name", "width", "height", "path"):
            if rng.random() < 0.3:
                meta[key] = junk[int(rng.integers(len(junk)))]
        out = rx.receive(meta, rec.get("data", b""))
        if "status" not in out:
            raise RuntimeError("record without status")
    return "handled"


def forge_header(sym: np.ndarray, modulation: str, code_id: int, n_symbols: int) -> np.ndarray:
    """A burst's symbols with its header replaced by another one (a valid CRC-8, any fields)."""
    from ..phy.burst import HEADER_BITS, HEADER_REP, PREAMBLE, header_symbols

    h0 = PREAMBLE.size
    return np.concatenate([sym[:h0], header_symbols(modulation, code_id, n_symbols),
                           sym[h0 + HEADER_BITS * HEADER_REP:]]).astype(np.complex64)


def _burst_case(rng) -> str:
    """Bursts whose header (valid CRC-8) claims a random modulation and length, then good bursts."""
    from ..fec import nr_code
    from ..fec.encoder import encode
    from ..phy.burst import BurstRx, BurstTx

    if not hasattr(_burst_case, "code"):
        _burst_case.code = nr_code(1536, 4608)
    code = _burst_case.code
    tx = BurstTx(sps=4)
    word = encode(code, rng.integers(0, 2, code.k, dtype=np.uint8))
    sym = tx.symbols(np.asarray(word).ravel())
    mod = ["qpsk", "16qam", "64qam"][int(rng.integers(3))]
    n_sym = int(rng.choice([0, 1, 100, 768, 1151, 1153, 2304, 4000, 65535]))
    bad = tx.shape(forge_header(sym, mod, int(rng.integers(256)), n_sym))
    good = tx.burst(np.asarray(word).ravel())
    gap = np.zeros(200, np.complex64)
    x = np.concatenate([gap, bad, gap, good, gap, bad, gap, good, gap])
    x = x + 0.05 * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))
    reps = BurstRx(4, code_bits=code.n).receive(x.astype(np.complex64))
    found = sum(r.llr is not None for r in reps)
    if found < 2:
        raise RuntimeError(f"forged header ({mod}, {n_sym} symbols) hid good bursts: {found} of 2 found")
    return "handled"


def prepare(args) -> int:
    """Encode the streams the codec cases mutate, in a process of its own: the children that run
    the cases then only decode, and their memory and time are the decoder's."""
    import torch

    torch.set_num_threads(1)
    from ..codec.registry import load_codec

    codec = load_codec(args.model)
    g = torch.Generator().manual_seed(0)
    bases = []
    for h, w in ((64, 64), (128, 192)):
        x = torch.nn.functional.interpolate(torch.rand(1, 3, h // 16, w // 16, generator=g), (h, w),
                                            mode="bicubic", align_corners=False).clamp(0, 1)
        bases.append(codec.compress(x)["bitstream"])
    bases.append(codec.compress(x, slices=(2, 4), page=SLICED_PAGE)["bitstream"])  # version 2 too
    # ... and with its head once (FLAG_HEAD_ONCE: the link repeats the head's codewords)
    bases.append(codec.compress(x, slices=(2, 4), page=SLICED_PAGE, head_copies=1)["bitstream"])
    # ... and with its slices not aligned to pages (FLAG_UNALIGNED)
    bases.append(codec.compress(x, slices=(2, 4), page=SLICED_PAGE, head_copies=1, align=False)["bitstream"])
    (Path(args.work) / "bases.bin").write_bytes(b"".join(struct.pack(">I", len(b)) + b for b in bases))
    # Compile the receiver's numba kernels here (they cache to disk), so the children measured
    # below load them instead of compiling: on a fresh clone compiling took ~0.5 GB of the
    # children's peak memory, which is the compiler's, not the decoder's.
    from ..phy import BurstRx, BurstTx

    burst = BurstTx().burst(np.zeros(4608, np.uint8))
    BurstRx(code_bits=4608).receive(np.concatenate([np.zeros(500, np.complex64), burst, np.zeros(500, np.complex64)]))
    return 0


def child(args) -> int:
    """Run cases [start, cases) and report each on stdout; a crash ends this process, not the run."""
    import torch

    torch.set_num_threads(1)
    from ..codec.registry import load_codec

    codec = load_codec(args.model, max_pixels=args.max_pixels) if "codec" in args.kinds else None
    bases = []
    if codec is not None:
        raw = (Path(args.work) / "bases.bin").read_bytes()
        while raw:
            (n,) = struct.unpack_from(">I", raw)
            bases.append(raw[4:4 + n])
            raw = raw[4 + n:]
    from ..framing import Reassembler  # noqa: F401 - what the cases use, loaded before they are measured
    from ..phy.burst import BurstRx  # noqa: F401

    out = sys.stdout
    out.write(f"ready {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}\n")
    out.flush()
    for i in range(args.start, args.cases):
        rng = np.random.default_rng([args.seed, i])
        kind = args.kinds[int(rng.integers(len(args.kinds)))]
        out.write(f"start {i} {kind}\n")
        out.flush()
        t0 = time.perf_counter()
        try:
            if kind == "codec":
                status = _codec_case(codec, bases, rng)
            elif kind == "deframer":
                status = _deframer_case(rng)
            else:
                status = _burst_case(rng)
        except Exception as exc:  # noqa: BLE001 - an uncaught error is a finding, reported
            status = f"uncaught {type(exc).__name__}: {str(exc)[:200]}".replace("\n", " ")
        dt = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out.write(f"done {i} {dt:.3f} {rss:.0f} {status}\n")
        out.flush()
    return 0


# -- the parent: runs children, counts crashes and hangs ----------------------------------------
def run(cases: int, seed: int = 0, model: str = "mse", kinds=KINDS, timeout: float = 30.0,
        max_pixels: int | None = None, progress: bool = True) -> dict:
    from ..codec.bitstream import DEFAULT_MAX_PIXELS

    res = {"cases": 0, "crashes": 0, "hangs": 0, "uncaught": 0, "max_decode_s": 0.0, "max_rss_mb": 0.0,
           "baseline_rss_mb": 0.0,
           "statuses": {}, "findings": []}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cases, desc="fuzz", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ncsc-fuzz-") as work:
        if "codec" in kinds:
            subprocess.run([sys.executable, "-m", "gnuradio.ncsc.bench.fuzz", "--prepare", "--model", model,
                            "--work", work], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        start = 0
        while start < cases:
            cmd = [sys.executable, "-m", "gnuradio.ncsc.bench.fuzz", "--child", "--cases", str(cases),
                   "--start", str(start), "--seed", str(seed), "--model", model, "--work", work,
                   "--max-pixels", str(max_pixels or DEFAULT_MAX_PIXELS), "--kinds", *kinds]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            current, started = None, None
            while True:
                wait = timeout if current is None else max(0.0, started + timeout - time.monotonic())
                if current is None:
                    wait = 600.0  # start-up: loading the weights
                if not sel.select(wait):
                    proc.kill()
                    proc.wait()
                    if current is not None:
                        res["hangs"] += 1
                        res["findings"].append(f"case {current}: hang (> {timeout:g} s)")
                        start = current + 1
                    else:
                        raise RuntimeError("fuzz child did not start")
                    break
                line = proc.stdout.readline()
                if not line:  # the child ended
                    rc = proc.wait()
                    if current is not None:
                        res["crashes"] += 1
                        res["findings"].append(f"case {current}: child died with exit code {rc}")
                        start = current + 1
                    else:
                        start = cases if rc == 0 else start
                        if rc != 0:
                            raise RuntimeError(f"fuzz child failed outside any case (exit code {rc})")
                    break
                parts = line.split(" ", 4)
                if parts[0] == "ready":  # the child's own start-up (imports, weights): not the cases'
                    res["baseline_rss_mb"] = max(res["baseline_rss_mb"], float(parts[1]))
                elif parts[0] == "start":
                    current, started = int(parts[1]), time.monotonic()
                elif parts[0] == "done":
                    i, dt, rss, status = int(parts[1]), float(parts[2]), float(parts[3]), parts[4].strip()
                    res["cases"] += 1
                    res["max_decode_s"] = max(res["max_decode_s"], dt)
                    res["max_rss_mb"] = max(res["max_rss_mb"], rss)
                    key = status.split(":")[0]
                    res["statuses"][key] = res["statuses"].get(key, 0) + 1
                    if status.startswith("uncaught"):
                        res["uncaught"] += 1
                        res["findings"].append(f"case {i}: {status}")
                    current = None
                    if bar is not None:
                        bar.update(1)
                    if i + 1 >= cases:
                        start = cases
            sel.close()
            if proc.poll() is None:
                proc.wait()
    if bar is not None:
        bar.close()
    res["crashed_or_hung_cases"] = res["crashes"] + res["hangs"]
    res["cases"] += res["crashed_or_hung_cases"]
    res["max_decode_s"] = round(res["max_decode_s"], 3)
    return res


def main(argv: list[str] | None = None) -> int:
    from ..codec.registry import METRICS  # the one list of metrics

    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="300 cases (about two minutes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", choices=METRICS, default="mse")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--timeout", type=float, default=30.0, help="seconds after which a case is a hang")
    p.add_argument("--max-pixels", type=int, default=None)
    p.add_argument("--out", default=None, help="also write the result JSON here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.prepare:
        return prepare(args)
    if args.child:
        return child(args)
    cases = 300 if args.quick else args.cases
    res = run(cases, args.seed, args.model, args.kinds, args.timeout, args.max_pixels)
    for f in res["findings"][:50]:
        print(f, file=sys.stderr)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    summary = {k: res[k] for k in ("cases", "crashes", "hangs", "uncaught", "max_decode_s", "max_rss_mb",
                                   "baseline_rss_mb")}
    print(json.dumps(summary))
    return 0 if not (res["crashes"] or res["hangs"] or res["uncaught"]) else 1


if __name__ == "__main__":
    sys.exit(main())
