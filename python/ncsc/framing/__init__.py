"""Framing: NCSC bitstreams to LDPC information blocks and back."""

from .frame import (
    HEADER_BYTES,
    BlockError,
    Framer,
    ParsedBlock,
    Reassembler,
    checked_int,
    handoff,
    parse_block,
    partial_stream,
    scramble,
)

__all__ = ["HEADER_BYTES", "BlockError", "Framer", "ParsedBlock", "Reassembler", "checked_int", "handoff",
           "parse_block", "partial_stream", "scramble"]
