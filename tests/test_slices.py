"""Sliced streams (bitstream version 2): any subset of slices decodes, lost ones are concealed,
and the link hands on what arrived, so a lost codeword costs part of a picture, not all of it."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from gnuradio.ncsc.codec import bitstream as bs
from gnuradio.ncsc.framing import Framer, Reassembler, partial_stream
from gnuradio.ncsc.imaging import ImageReceiver, ImageSender

PAGE = 40


@pytest.fixture(scope="module")
def picture():
    y, x = np.mgrid[0:256, 0:384]
    img = np.stack([x % 256, y, (x * y) % 256], -1).astype(np.float32) / 255
    return torch.from_numpy(img).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def sliced(tiny_codec, picture):
    return tiny_codec.compress(picture, reconstruct=True, slices=(4, 8), page=PAGE)


def test_sliced_stream_decodes_exactly(tiny_codec, sliced):
    out = tiny_codec.decompress(sliced["bitstream"])
    assert torch.equal(out["y_hat"], sliced["y_hat"].double())
    assert torch.equal(out["x_hat"], sliced["x_hat"])
    assert out["concealed"] == 0 and out["lost_slices"] == []


def test_layout_keeps_short_slices_on_one_page():
    offsets = bs.slice_layout([30, 30, 50, 10], 40)
    assert offsets == [0, 40, 70, 120]  # the second starts a page; the long one spans where it is


def test_lost_pages_cost_only_their_slices(tiny_codec, sliced):
    data = bytearray(sliced["bitstream"])
    header, _, slices = bs.unpack_sliced(bytes(data))
    head_pages = -(-(bs.HEAD2_FIXED + 2 * len(slices) + header.len_z + 4) // PAGE)
    area0 = 2 * head_pages * PAGE
    offsets = bs.slice_layout(header.slice_lengths, PAGE, aligned=header.aligned)
    victim = (area0 + offsets[3]) // PAGE  # the page where slice 3 starts
    data[victim * PAGE : (victim + 1) * PAGE] = bytes(PAGE)
    out = tiny_codec.decompress(bytes(data), lost_pages=[victim], page=PAGE)
    on_page = [i for i, (o, n) in enumerate(zip(offsets, header.slice_lengths, strict=True))
               if (area0 + o) // PAGE <= victim <= (area0 + o + n - 1) // PAGE]
    assert 3 in on_page and out["lost_slices"] == on_page  # exactly the slices on that page
    assert 0 < out["concealed"] < 1
    kept = [i for i in range(len(slices)) if i not in out["lost_slices"]]
    for i in kept:  # the slices that arrived decode as sent
        r0, r1, c0, c1 = header.tiles()[i]
        assert torch.equal(out["y_hat"][..., r0:r1, c0:c1], sliced["y_hat"].double()[..., r0:r1, c0:c1])


def test_head_is_read_from_its_copy(tiny_codec, sliced):
    data = bytearray(sliced["bitstream"])
    data[:PAGE] = bytes(PAGE)
    out = tiny_codec.decompress(bytes(data), lost_pages=[0], page=PAGE)
    assert torch.equal(out["y_hat"], sliced["y_hat"].double())  # only the head's first copy was lost
    _, _, slices = bs.unpack_sliced(sliced["bitstream"])
    head_pages = -(-(bs.HEAD2_FIXED + 2 * len(slices) + len(sliced["strings"][1][0]) + 4) // PAGE)
    both = list(range(2 * head_pages))
    for i in both:
        data[i * PAGE : (i + 1) * PAGE] = bytes(PAGE)
    with pytest.raises(bs.BitstreamError, match="no intact copy"):
        tiny_codec.decompress(bytes(data), lost_pages=both, page=PAGE)


@pytest.mark.parametrize("damage", ["truncate", "page", "slicing", "flip"])
def test_forged_sliced_streams_are_refused_or_concealed(tiny_codec, sliced, damage):
    data = bytearray(sliced["bitstream"])
    if damage == "truncate":
        with pytest.raises(bs.BitstreamError):
            tiny_codec.decompress(bytes(data[:-7]))
        return
    if damage == "page":
        with pytest.raises(bs.BitstreamError, match="pages"):
            tiny_codec.decompress(bytes(data), lost_pages=[1], page=PAGE * 2)
        return
    if damage == "slicing":  # a head with a consistent CRC but tiles that do not fit: refused, not decoded
        fields = list(bs._HDR2.unpack_from(data))
        fields[12] = 0  # tile_h 0
        fixed = bs._HDR2.pack(*fields)
        import struct
        import zlib

        data[: bs.HEAD2_FIXED] = fixed + struct.pack(">I", zlib.crc32(fixed))
        with pytest.raises(bs.BitstreamError, match="slicing"):
            tiny_codec.decompress(bytes(data))
        return
    data[-3] ^= 0xFF  # a flipped byte inside the last slice: that slice is concealed, never a crash
    out = tiny_codec.decompress(bytes(data))
    assert out["x_hat"].shape == sliced["x_hat"].shape


def test_link_delivers_part_of_a_sliced_image(tiny_codec, tmp_path):
    """Blocks lost, duplicated and reordered on the way: the image arrives with its record, status
    partial and the share concealed; the same losses leave a whole-stream image failed."""
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / "pic.png"
    y, x = np.mgrid[0:256, 0:384]
    Image.fromarray(np.stack([x % 256, y, (x * y) % 256], -1).astype(np.uint8)).save(path)
    framer = Framer(8 * (PAGE + 12))  # a block's payload is one page
    assert framer.capacity == PAGE
    results = {}
    for mode, sender in (("sliced", ImageSender(tiny_codec, slices=(4, 8), page=PAGE)),
                         ("whole", ImageSender(tiny_codec))):
        meta, data = sender.encode(path)
        blocks = framer.frame(meta["image_id"], data)
        n = blocks.shape[0]
        order = list(rng.permutation(n))
        lost = {n - 1, n - 3}  # two blocks of the slice area lost (the head's copies arrive)
        sent = [i for i in order if i not in lost]
        sent.append(sent[0])  # reordered, one duplicated
        reasm = Reassembler()
        events = []
        for i in sent:
            events += reasm.add(blocks[i], dict(meta, block_index=int(i), block_count=n))
        events += reasm.flush()
        (ev,) = events
        assert ev["status"] == "incomplete" and sorted(ev["missing"]) == sorted(lost)
        assert reasm.duplicates == 1
        m = dict(ev.pop("meta"))
        m.update(ev, lost=sorted(lost), block_bytes=PAGE)
        m.pop("parts")
        payload = partial_stream(ev["parts"], ev["blocks"], PAGE)
        rec = ImageReceiver(lambda metric: tiny_codec, tmp_path / mode).receive(m, payload)
        results[mode] = rec
    assert results["sliced"]["status"] == "partial", results["sliced"].get("reason")
    assert 0 < results["sliced"]["concealed"] < 1
    assert "psnr" in results["sliced"] and results["sliced"]["png"]
    assert results["whole"]["status"] == "failed"


def _through_deframer(codec, tmp_path, lost, progressive=0) -> list:
    """A 384x256 picture, sliced, framed and handed to a Deframer without block ``lost(n)`` of
    its n; returns the (meta, data) PDUs the Deframer handed on."""
    from gnuradio import ncsc
    from PIL import Image

    from gnuradio.ncsc.blocks.pdu import from_pdu

    path = tmp_path / "pic.png"
    y, x = np.mgrid[0:256, 0:384]
    Image.fromarray(np.stack([x % 256, y, (x * y) % 256], -1).astype(np.uint8)).save(path)
    framer = Framer(8 * (PAGE + 12))
    meta, data = ImageSender(codec, slices=(4, 8), page=PAGE).encode(path)
    blocks = framer.frame(meta["image_id"], data)
    dfr = ncsc.deframer(k=framer.k, progressive=progressive)
    out = []
    dfr.message_port_pub = lambda port, msg: out.append(from_pdu(msg, np.uint8))  # collect what it hands on
    for i, b in enumerate(blocks):
        if i != lost(len(blocks)):
            dfr.process(dict(meta, block_index=i, block_count=len(blocks)), b)
    dfr._publish(dfr.reasm.flush())
    return out


def test_progressive_deframer_and_sink_show_a_picture_building_up(tiny_codec, tmp_path):
    """A progressive Deframer hands on interim PDUs as blocks arrive; the Decoder Sink decodes them
    for display (no record, no file) and the final image gets its record as usual."""
    from gnuradio import ncsc

    from gnuradio.ncsc.blocks.image_viewer import parse_boxes

    out = _through_deframer(tiny_codec, tmp_path, lost=lambda n: n - 2, progressive=4)  # one slice block lost
    interim = [(m, d) for m, d in out if m.get("interim")]
    final = [(m, d) for m, d in out if not m.get("interim")]
    assert len(interim) >= 2 and len(final) == 1
    assert [m["received"] for m, _ in interim] == sorted(m["received"] for m, _ in interim)
    sink = ncsc.decoder_sink(str(tmp_path / "out"), codec=tiny_codec)
    shown = [r for r in (sink._decode(m, d.tobytes()) for m, d in interim + final) if r is not None]
    assert len(sink.records) == 1 and sink.records[0]["status"] == "partial"
    assert len(shown) >= 2 and all(s[0].get("interim") for s in shown[:-1])  # before the head: nothing shown
    assert all(s[1].size for s in shown)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["00000_pic.png"]  # interim: no files
    boxes = parse_boxes(sink.records[0]["concealed_boxes"])
    assert boxes and all(0 <= x0 < x1 <= 384 and 0 <= y0 < y1 <= 256 for x0, y0, x1, y1 in boxes)
    assert parse_boxes("1,2,3;x;5,5,4,9;0,0,16,16") == [(0, 0, 16, 16)]


def test_cliff_benchmark_runs_both_modes(tiny_codec, tmp_path, monkeypatch):
    """bench.cliff's measurement on two small pictures: graceful beside all-or-nothing, the rate
    overhead of slicing, and every field of its JSON line."""
    from PIL import Image

    from gnuradio.ncsc.bench import cliff

    rng = np.random.default_rng(1)
    files = []
    for i in range(2):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        path = tmp_path / f"p{i}.png"
        Image.fromarray(small).resize((512, 384), Image.BICUBIC).save(path)
        files.append(path)
    res = cliff.run(files, [0.5, 8.0], tiny_codec, "paper-awgn-graceful", seeds=(0, 1), progress=False,
                    classical=("jpeg",))
    for key in ("ebn0_db", "psnr", "psnr_all_or_nothing", "shown", "shown_all_or_nothing", "rate_overhead"):
        assert key in res
    for key in ("psnr", "shown", "psnr_jpeg"):  # two draws of the noise, the figure their mean
        draws = res[f"{key}_per_seed"]
        assert [len(d) for d in draws] == [2, 2] and res[key][0] == pytest.approx(np.mean(draws[0]), abs=1e-3)
    assert {r["seed"] for r in res["per_image"]} == {0, 1}
    calls = []
    receive = ImageReceiver.receive
    monkeypatch.setattr(ImageReceiver, "receive", lambda self, meta, data: calls.append(1) or receive(self, meta, data))
    again = cliff.run(files, [8.0, 9.0], tiny_codec, "paper-awgn-graceful", seeds=(0, 1, 2), progress=False,
                      classical=())
    assert len(calls) == 2 * len(files)  # every draw delivers the same streams: each decoded once
    assert again["psnr"] == pytest.approx([res["psnr"][1]] * 2, abs=2e-3)
    aligned = cliff.run(files, [9.0], tiny_codec, "paper-awgn-graceful", progress=False, classical=(), align=True)
    assert aligned["rate_overhead"] >= again["rate_overhead"]  # alignment only ever pads
    assert res["shown"][1] == res["shown_all_or_nothing"][1] == 1.0  # 8 dB: everything arrives
    assert res["shown"][0] >= res["shown_all_or_nothing"][0] and res["rate_overhead"] > 0
    assert res["shown_jpeg"][1] == 1.0 and res["psnr_jpeg"][1] > res["psnr_jpeg"][0]  # JPEG: all or nothing
    cliff.plot(res, tmp_path / "cliff.png")
    assert (tmp_path / "cliff.png").stat().st_size > 0


def test_a_slice_too_short_to_hold_a_coder_state_is_concealed_not_fatal(tiny_codec, sliced):
    """A slice string under 4 bytes (no rANS state) is one damaged slice: the others decode."""
    header, z, slices = bs.unpack_sliced(sliced["bitstream"])
    slices = list(slices)
    slices[1] = b"\x01\x02"
    out = tiny_codec._decode_sliced(header, z, slices)
    assert 1 in out["lost_slices"] and 0 not in out["lost_slices"]


def test_head_once_for_a_link_that_repeats_it(tiny_codec, picture, sliced):
    """head_copies=1 writes the head once (FLAG_HEAD_ONCE) with the slices starting right after
    it (FLAG_HEAD_PACKED): the stream is a head and the head's padding shorter, decodes to the
    same latents, and head_pages says how many pages a link should protect."""
    once = tiny_codec.compress(picture, slices=(4, 8), page=PAGE, head_copies=1)
    twice = sliced["bitstream"]
    n_head = bs.head_pages(twice)
    assert n_head % 2 == 0 and bs.head_pages(once["bitstream"]) == n_head // 2
    head_len = bs.HEAD2_FIXED + 2 * len(sliced["strings"][0]) + len(sliced["strings"][1][0]) + 4
    assert len(twice) - len(once["bitstream"]) >= n_head * PAGE - head_len
    assert once["bitstream"][9] == bs.FLAG_HEAD_ONCE | bs.FLAG_HEAD_PACKED | bs.FLAG_UNALIGNED
    assert twice[9] == bs.FLAG_UNALIGNED
    out = tiny_codec.decompress(once["bitstream"])
    assert torch.equal(out["y_hat"], sliced["y_hat"].double())
    # lost slice pages are still concealed, counted from the single head
    lost = [n_head // 2 + 1]
    data = bytearray(once["bitstream"])
    data[lost[0] * PAGE : (lost[0] + 1) * PAGE] = bytes(PAGE)
    part = tiny_codec.decompress(bytes(data), lost_pages=lost, page=PAGE)
    assert 0 < part["concealed"] < 1
    # unknown flag bits are refused like any other forged header field
    forged = bytearray(once["bitstream"])
    forged[9] |= 0x08
    forged[28:32] = zlib.crc32(bytes(forged[:28])).to_bytes(4, "big")
    with pytest.raises(bs.BitstreamError):
        tiny_codec.decompress(bytes(forged))
    assert bs.head_pages(b"not a stream") == 0


def test_repeated_head_blocks_survive_where_single_blocks_fail():
    """The link repeats the head's blocks and adds their LLRs: at Eb/N0 0.5 dB, far below the
    code's threshold, the protected blocks decode while most single ones fail."""
    from gnuradio.ncsc.link import PlainLink
    from gnuradio.ncsc.profiles import load_profile

    prof = load_profile("paper-awgn-graceful")
    assert prof.head_repeat == 2
    link = PlainLink(0.5, prof, seed=3)
    rng = np.random.default_rng(4)
    info = rng.integers(0, 2, (8, prof.k)).astype(np.uint8)
    res = link.transmit(info, protect=4)
    assert res.ok[:4].all()
    assert res.ok[4:].sum() <= 1
    np.testing.assert_array_equal(res.bits[:4], info[:4])
    assert link.codewords_sent(8, protect=4) == 12


def test_harmonic_fill_is_the_mean_of_its_neighbours():
    """Concealment's interpolation: every filled position is the mean of its neighbours inside
    the grid (the Laplace equation the iteration of that rule converges to), known ones kept; a
    linear ramp known around an inner hole comes back exactly."""
    from gnuradio.ncsc.codec.coder import harmonic_fill

    rng = np.random.default_rng(3)
    known = rng.random((12, 20)) > 0.35
    known[0, 0] = True
    vals = rng.standard_normal((3, 12, 20))
    out = harmonic_fill(vals, known)
    np.testing.assert_array_equal(out[:, known], vals[:, known])
    p = np.pad(out, ((0, 0), (1, 1), (1, 1)), mode="edge")  # an outside neighbour is the position itself
    nbr = (p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]) / 4
    np.testing.assert_allclose(out[:, ~known], nbr[:, ~known], atol=1e-12)
    ramp = np.broadcast_to(np.arange(12.0)[:, None] * 0.5 + np.arange(20.0)[None, :], (1, 12, 20))
    hole = np.ones((12, 20), bool)
    hole[3:8, 4:15] = False
    np.testing.assert_allclose(harmonic_fill(ramp, hole), ramp, atol=1e-12)
    assert not np.any(harmonic_fill(vals, np.zeros((12, 20), bool)))


def test_packed_head_layout_keeps_slices_on_their_pages(tiny_codec, picture):
    """FLAG_HEAD_PACKED: the slices follow the head in its last page; each slice still sits on
    the pages slice_layout gives from that start, a lost page conceals exactly the slices on it,
    and a packed flag without FLAG_HEAD_ONCE is refused."""
    out = tiny_codec.compress(picture, slices=(2, 4), page=PAGE, head_copies=1)
    data = out["bitstream"]
    header, z, slices = bs.unpack_sliced(data)
    assert header.packed and header.head_copies == 1 and list(slices) == out["strings"][0]
    head_len = bs.HEAD2_FIXED + 2 * len(slices) + len(z) + 4
    assert head_len % PAGE  # the head's last page has room, which the slices use
    offsets = bs.slice_layout(header.slice_lengths, PAGE, head_len, header.aligned)
    for off, s in zip(offsets, slices, strict=True):
        assert data[head_len + off : head_len + off + len(s)] == s
    n_pages = -(-len(data) // PAGE)
    victim = n_pages - 1  # a slice page after the head
    hit = {i for i, (off, n) in enumerate(zip(offsets, header.slice_lengths, strict=True))
           if (head_len + off) // PAGE <= victim <= (head_len + off + n - 1) // PAGE}
    damaged = bytearray(data)
    damaged[victim * PAGE : (victim + 1) * PAGE] = bytes(len(damaged[victim * PAGE : (victim + 1) * PAGE]))
    _, _, got = bs.unpack_sliced(bytes(damaged), lost_pages=[victim], page=PAGE)
    assert {i for i, s in enumerate(got) if s is None} == hit and hit
    forged = bytearray(data)
    forged[9] = bs.FLAG_HEAD_PACKED
    forged[28:32] = zlib.crc32(bytes(forged[:28])).to_bytes(4, "big")
    with pytest.raises(bs.BitstreamError):
        bs.unpack_sliced(bytes(forged))


def test_a_cut_rans_string_decodes_its_beginning_exactly():
    """rANS reads forward: the received beginning of a string gives the first values as coded,
    every value decided before the string ends; a whole string is still required by default."""
    from gnuradio.ncsc.codec.entropy import RansStream, encode_values

    rng = np.random.default_rng(3)
    n = 400
    w = np.full((n, 3), 1, dtype=np.int64) << 8
    s = rng.integers(20, 50, size=(n, 3))
    mu = rng.integers(-64, 64, size=(n, 3))
    values = np.round(rng.normal(0, 8, n)).astype(np.int64)
    values[5::37] = 5000  # escapes, outside every support
    data = encode_values(values, w, s, mu)
    full = RansStream(data).decode(w, s, mu)
    assert np.array_equal(full, values)
    for cut in (4, 5, len(data) // 3, len(data) // 2, len(data) - 1):
        got = RansStream(data[:cut]).decode(w, s, mu, partial=True)
        assert got.size < n or cut == len(data) - 1  # the last byte: only the final renormalisation
        assert got.size > 0 or cut < 8
        assert np.array_equal(got, values[: got.size])
        with pytest.raises(ValueError, match="ends early"):
            RansStream(data[:cut]).decode(w, s, mu)


@pytest.fixture(scope="module")
def wide_codec():
    """A tiny random model whose analysis is scaled up so that slices span many pages."""
    from gnuradio.ncsc.codec.coder import NcscCodec
    from gnuradio.ncsc.codec.model import NcscModel

    torch.manual_seed(0)
    model = NcscModel(N=8)
    [m for m in model.g_a.modules() if isinstance(m, torch.nn.Conv2d)][-1].weight.data *= 40
    model.update(force=True)
    return NcscCodec(model.eval())


def test_a_slice_that_lost_a_later_page_keeps_its_beginning(wide_codec, picture):
    """A lost page in the middle of a long slice costs only what was coded from there on: the
    slice's positions before the cut (in coding order) decode exactly, the rest is concealed, and
    a slice whose first page is lost is concealed whole."""
    from gnuradio.ncsc.codec.coder import coding_order

    out = wide_codec.compress(picture, slices=(4, 8), page=PAGE, head_copies=1)
    data = out["bitstream"]
    header, z, slices = bs.unpack_sliced(data)
    head_len = bs.HEAD2_FIXED + 2 * len(slices) + len(z) + 4
    offsets = bs.slice_layout(header.slice_lengths, PAGE, head_len, header.aligned)
    j = 5
    first, last = (head_len + offsets[j]) // PAGE, (head_len + offsets[j] + len(slices[j]) - 1) // PAGE
    assert last - first >= 4  # spans pages
    victim = first + (last - first) // 2
    damaged = bytearray(data)
    damaged[victim * PAGE : (victim + 1) * PAGE] = bytes(PAGE)
    _, _, got = bs.unpack_sliced(bytes(damaged), lost_pages=[victim], page=PAGE)
    assert isinstance(got[j], bs.SlicePrefix) and bytes(got[j]) == slices[j][: victim * PAGE - head_len - offsets[j]]
    dec = wide_codec.decompress(bytes(damaged), lost_pages=[victim], page=PAGE)
    assert j in dec["partial_slices"] and j not in dec["lost_slices"]
    sent = out["y_hat"].double()[0]
    r0, r1, c0, c1 = header.tiles()[j]
    steps = coding_order(r1 - r0, c1 - c0, header.order)
    rows = np.concatenate([st[0] for st in steps]) + r0
    cols = np.concatenate([st[1] for st in steps]) + c0
    n_lost = round(dec["concealed"] * sent.shape[1] * sent.shape[2])
    others = [i for i in dec["lost_slices"] + dec["partial_slices"] if i != j]
    assert not others  # the page held only this slice
    kept = rows.size - n_lost
    assert 0 < kept < rows.size
    assert torch.equal(dec["y_hat"][0][:, rows[:kept], cols[:kept]], sent[:, rows[:kept], cols[:kept]])
    assert not torch.equal(dec["y_hat"][0][:, rows[kept:], cols[kept:]], sent[:, rows[kept:], cols[kept:]])
    assert dec["concealed_boxes"][0][0] >= r0 and dec["concealed_boxes"][0][1] == r1
    mask = np.ones(sent.shape[1:], dtype=bool)
    mask[rows[kept:], cols[kept:]] = False
    assert torch.equal(dec["y_hat"][0][:, mask], sent[:, mask])  # every other slice as sent
    damaged = bytearray(data)
    damaged[first * PAGE : (first + 1) * PAGE] = bytes(PAGE)
    dec = wide_codec.decompress(bytes(damaged), lost_pages=[first], page=PAGE)
    assert j in dec["lost_slices"]


def test_unaligned_slices_follow_each_other_and_a_lost_page_cuts_its_neighbours(wide_codec, picture):
    """FLAG_UNALIGNED: no padding between slices; a lost page loses the slices that start on
    it, the one running into it keeps its beginning, every other slice decodes as sent."""
    BIG = 300  # pages longer than the slices (about 200-280 bytes), so that alignment pads
    assert bs.slice_layout([30, 30, 50, 10], 40, aligned=False) == [0, 30, 60, 110]
    aligned = wide_codec.compress(picture, slices=(2, 4), page=BIG, head_copies=1, align=True)
    out = wide_codec.compress(picture, slices=(2, 4), page=BIG, head_copies=1, align=False)
    data = out["bitstream"]
    header, z, slices = bs.unpack_sliced(data)
    assert not header.aligned and data[9] & bs.FLAG_UNALIGNED and list(slices) == out["strings"][0]
    head_len = bs.HEAD2_FIXED + 2 * len(slices) + len(z) + 4
    assert len(data) == head_len + sum(header.slice_lengths) < len(aligned["bitstream"])
    assert torch.equal(wide_codec.decompress(data)["y_hat"], out["y_hat"].double())
    offsets = bs.slice_layout(header.slice_lengths, BIG, head_len, aligned=False)
    starts = [(head_len + o) // BIG for o in offsets]
    ends = [(head_len + o + n - 1) // BIG for o, n in zip(offsets, header.slice_lengths, strict=True)]
    spans = list(zip(starts, ends, strict=True))
    victim = next(p for p in range(starts[0] + 1, ends[-1]) if any(a < p <= b for a, b in spans))
    damaged = bytearray(data)
    damaged[victim * BIG : (victim + 1) * BIG] = bytes(BIG)
    _, _, got = bs.unpack_sliced(bytes(damaged), lost_pages=[victim], page=BIG)
    n_cut = 0
    for i, s in enumerate(got):
        if starts[i] == victim:
            assert s is None
        elif starts[i] < victim <= ends[i]:  # cut: its beginning up to the lost page
            cut = victim * BIG - head_len - offsets[i]
            assert (s is None) if cut < 4 else (isinstance(s, bs.SlicePrefix) and s == slices[i][:cut])
            n_cut += cut >= 4
        else:
            assert s == slices[i]
    assert n_cut == 1
    res = wide_codec.decompress(bytes(damaged), lost_pages=[victim], page=BIG)
    assert 0 < res["concealed"] < 1 and len(res["partial_slices"]) == 1


def test_record_of_a_cut_slice(wide_codec, tmp_path):
    """Through the deframer and the Decoder Sink: a block lost in the middle of a long slice
    makes a partial picture whose record counts the cut slice and boxes only what was filled."""
    from gnuradio import ncsc

    from gnuradio.ncsc.blocks.image_viewer import parse_boxes

    out = _through_deframer(wide_codec, tmp_path, lost=lambda n: n // 2)
    sink = ncsc.decoder_sink(str(tmp_path / "out"), codec=wide_codec)
    for m, d in out:
        sink._decode(m, d.tobytes())
    rec = sink.records[-1]
    assert rec["status"] == "partial" and rec["partial_slices"] == 1 and rec["lost_slices"] == 0
    assert 0 < rec["concealed"] < 1 / 12  # less than the one slice (of 12) it cut
    (x0, y0, x1, y1), = parse_boxes(rec["concealed_boxes"])
    assert (x1 - x0) * (y1 - y0) < 64 * 128  # within that slice's 4x8 latents (64 x 128 pixels)
