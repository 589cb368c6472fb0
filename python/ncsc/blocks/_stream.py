"""Stream helpers shared by the burst hier blocks (not blocks of their own in GRC)."""

from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr


class sob_eob_tagger(gr.sync_block):  # noqa: N801
    """Adds UHD's tx_sob / tx_eob tags around each packet_len-tagged burst."""

    def __init__(self, len_tag: str = "packet_len"):
        gr.sync_block.__init__(self, name="ncsc_sob_eob_tagger", in_sig=[np.complex64], out_sig=[np.complex64])
        self.len_tag = pmt.intern(len_tag)
        self.set_tag_propagation_policy(gr.TPP_ONE_TO_ONE)

    def work(self, input_items, output_items):
        n = len(input_items[0])
        output_items[0][:] = input_items[0]
        for tag in self.get_tags_in_window(0, 0, n, self.len_tag):
            length = pmt.to_long(tag.value)
            self.add_item_tag(0, tag.offset, pmt.intern("tx_sob"), pmt.PMT_T)
            self.add_item_tag(0, tag.offset + length - 1, pmt.intern("tx_eob"), pmt.PMT_T)
        return n
