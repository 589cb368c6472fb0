"""Shared plumbing for the packet-level (PDU) blocks.

A PDU is ``pmt.cons(meta_dict, uniform_vector)``. Every ncsc PDU block validates its
input, calls a plain-Python ``process(meta, data)``, and on any error logs and drops
that one PDU: a flowgraph never dies on a bad packet.
"""

from __future__ import annotations

import struct

import numpy as np
import pmt
from gnuradio import gr

from ._stream import WarmUp

PORT_IN = "in"
PORT_OUT = "out"

_VECTOR_KIND = {
    np.dtype(np.uint8): "u8",
    np.dtype(np.float32): "f32",
    np.dtype(np.complex64): "c32",
}
_CHECK = {"u8": pmt.is_u8vector, "f32": pmt.is_f32vector, "c32": pmt.is_c32vector}


class PduError(ValueError):
    """A PDU that a block cannot process (wrong type, wrong length, bad values)."""


# Payloads cross into and out of pmt through its serialised form (pmt_serialize.cc: tag
# ST_UVECTOR, element type, u32 length, a pad count and that many pad bytes, then the
# elements big-endian): one bytes copy each way, where the element lists of
# init_f32vector / f32vector_elements go through a Python float per element. Measured, 4608
# float32 LLRs (one per burst): to a pmt 0.10 -> 0.02 ms, from a pmt 0.27 -> 0.02 ms.
_ST_UVECTOR = 0x0A
_UVI = {"u8": 0x00, "f32": 0x08, "c32": 0x0A}
_WIRE = {"u8": np.dtype("u1"), "f32": np.dtype(">f4"), "c32": np.dtype(">c8")}


def _to_uvector(kind: str, data: np.ndarray) -> pmt.pmt_t:
    head = bytes((_ST_UVECTOR, _UVI[kind])) + int(data.size).to_bytes(4, "big") + b"\x01\x00"
    return pmt.deserialize_str(head + data.astype(_WIRE[kind], copy=False).tobytes())


def _from_uvector(kind: str, vec: pmt.pmt_t, dtype) -> np.ndarray:
    raw = pmt.serialize_str(vec)
    n = int.from_bytes(raw[2:6], "big")
    start = 7 + raw[6]
    if raw[0] != _ST_UVECTOR or raw[1] != _UVI[kind] or len(raw) != start + n * _WIRE[kind].itemsize:
        raise PduError(f"PDU payload is not a well-formed {kind}vector")
    return np.frombuffer(raw, _WIRE[kind], n, start).astype(dtype)


# Metadata dicts the same way (tags of pmt_serialize.cc; a dict is ST_DICT, one (key .
# value) pair, then the rest of the dict, ST_NULL at its end, the last added key first): the
# receiver's flat reports (numbers, flags, names, lists of them) cost 0.18 ms a burst through
# pmt.to_pmt (a dict_add and a type dispatch per key), a tenth of the receiver's time.
_ST_SYMBOL, _ST_INT32, _ST_DOUBLE, _ST_PAIR, _ST_VECTOR, _ST_DICT, _ST_INT64 = 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x0D
_DOUBLE = struct.Struct(">Bd")
_INT32 = struct.Struct(">Bi")
_INT64 = struct.Struct(">Bq")
_HEAD = struct.Struct(">BI")
_KEYS: dict = {}  # key -> its serialised (ST_DICT, ST_PAIR, symbol) prefix; keys repeat every burst


class _UnflatError(Exception):
    """A value outside what _wire writes (pmt.to_pmt takes it)."""


def _wire(v, out: list) -> None:
    if v is True or v is False:
        out.append(b"\x00" if v else b"\x01")
    elif isinstance(v, float):
        out.append(_DOUBLE.pack(_ST_DOUBLE, v))
    elif isinstance(v, int):
        if -(1 << 31) <= v < (1 << 31):
            out.append(_INT32.pack(_ST_INT32, v))
        elif -(1 << 63) <= v < (1 << 63):
            out.append(_INT64.pack(_ST_INT64, v))
        else:
            raise _UnflatError
    elif isinstance(v, str):
        b = v.encode()
        if len(b) > 0xFFFF:
            raise _UnflatError
        out.append(bytes((_ST_SYMBOL,)) + len(b).to_bytes(2, "big") + b)
    elif isinstance(v, list):
        out.append(_HEAD.pack(_ST_VECTOR, len(v)))
        for item in v:
            if isinstance(item, list):
                raise _UnflatError
            _wire(item, out)
    else:
        raise _UnflatError


def _key(key) -> bytes:
    head = _KEYS.get(key)
    if head is None:
        if not isinstance(key, str) or len(key.encode()) > 0xFFFF:
            raise _UnflatError
        if len(_KEYS) > 4096:
            _KEYS.clear()
        b = key.encode()
        head = _KEYS[key] = bytes((_ST_DICT, _ST_PAIR, _ST_SYMBOL)) + len(b).to_bytes(2, "big") + b
    return head


def meta_to_pmt(meta: dict) -> pmt.pmt_t:
    """``pmt.to_pmt(meta)`` for a flat dict (str keys; bool, int, float, str values or lists of
    them), built from its serialised form; anything else goes through pmt.to_pmt."""
    out = []
    try:
        for key, value in reversed(meta.items()):
            out.append(_key(key))
            _wire(value, out)
    except _UnflatError:
        return pmt.to_pmt(meta)
    out.append(b"\x06")  # ST_NULL
    return pmt.deserialize_str(b"".join(out))


def to_pdu(meta: dict, data: np.ndarray) -> pmt.pmt_t:
    """Build a PDU from a Python dict and a numpy vector (uint8, float32 or complex64)."""
    data = np.ascontiguousarray(data)
    if data.dtype not in _VECTOR_KIND:
        raise TypeError(f"unsupported PDU payload dtype {data.dtype}")
    return pmt.cons(meta_to_pmt(meta), _to_uvector(_VECTOR_KIND[data.dtype], data.ravel()))


def from_pdu(msg: pmt.pmt_t, dtype) -> tuple[dict, np.ndarray]:
    """Split a PDU into (meta dict, numpy vector of ``dtype``), or raise :class:`PduError`."""
    if not pmt.is_pair(msg) or pmt.is_dict(msg):
        raise PduError("message is not a PDU (expected pmt.cons(dict, vector))")
    car, cdr = pmt.car(msg), pmt.cdr(msg)
    if not (pmt.is_dict(car) or pmt.eq(car, pmt.PMT_NIL)):
        raise PduError("PDU metadata is not a dictionary")
    want = _VECTOR_KIND[np.dtype(dtype)]
    if not _CHECK[want](cdr):
        raise PduError(f"PDU payload must be a {want}vector")
    meta = pmt.to_python(car) if pmt.is_dict(car) else {}
    return dict(meta or {}), _from_uvector(want, cdr, dtype)


class PduBlock(gr.basic_block):
    """Base for blocks with one PDU input and one PDU output; subclasses implement ``process``."""

    in_dtype = np.uint8

    def __init__(self, name: str):
        gr.basic_block.__init__(self, name=name, in_sig=None, out_sig=None)
        self.message_port_register_in(pmt.intern(PORT_IN))
        self.message_port_register_out(pmt.intern(PORT_OUT))
        self.set_msg_handler(pmt.intern(PORT_IN), self._handle)
        self.n_in = 0
        self.n_dropped = 0
        self._warm = WarmUp(self.warm_up, f"{name}_warm_up", self.logger)

    def warm_up(self) -> None:
        """What to load before the first packet (compiled kernels, tables); runs on a thread of
        its own from start(). Subclasses that need nothing loaded leave it empty."""

    def start(self):
        if type(self).warm_up is not PduBlock.warm_up:
            self._warm.start()
        return True

    def stop(self):
        self._warm.join()
        return True

    def _handle(self, msg):
        self.n_in += 1
        try:
            meta, data = from_pdu(msg, self.in_dtype)
            result = self.process(meta, data)
        except Exception as exc:  # noqa: BLE001 - one bad PDU must never stop the flowgraph
            self.n_dropped += 1
            self.logger.warn(f"dropped PDU #{self.n_in}: {exc}")
            return
        if result is not None:
            self.message_port_pub(pmt.intern(PORT_OUT), to_pdu(*result))

    def process(self, meta: dict, data: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError
