#!/usr/bin/env python3
"""A two-radio link in three processes joined by GNU Radio's ZMQ blocks: TX -> channel -> RX.

    python examples/zmq_link.py rx      --out DIR          [--port 5555] [--profile ota-16qam-graceful]
    python examples/zmq_link.py channel --esn0 10 --cfo 0.01 --ppm 50   [--port 5555]
    python examples/zmq_link.py tx      --image FILE       [--port 5555]

Give all three the same --port P: TX sends on P, the channel listens on P and sends on
P + 1, where RX listens (each role adds the 1 itself).

Each process is its own flowgraph, as each radio would be: the TX process sends bursts
(NCSC image source -> framer -> burst TX) over a ZMQ PUSH socket, the channel process
adds noise, carrier and clock offset and multipath (GNU Radio's channel model), the RX
process (burst RX -> deframer -> decoder sink) writes the decoded PNG and JSON record.
Start them in any order; stop them with Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def build(args):
    from gnuradio import channels, gr, ncsc, zeromq

    prof = ncsc.load_profile(args.profile)  # the link: code, modulation, pulse, amplitude
    sps, amplitude = prof.burst.sps, prof.burst.amplitude
    tb = gr.top_block(f"ncsc zmq {args.role}")
    addr_in = f"tcp://127.0.0.1:{args.port}"
    addr_out = f"tcp://127.0.0.1:{args.port + 1}"
    if args.role == "tx":
        from gnuradio.ncsc.loopback import default_image

        src = ncsc.image_source(args.image or default_image(), args.model, False, args.interval, profile=prof)
        framer = ncsc.framer(profile=prof)
        tx = ncsc.burst_tx(profile=prof)
        sink = zeromq.push_sink(gr.sizeof_gr_complex, 1, addr_in, 100, False, -1)
        tb.msg_connect(src, "out", framer, "in")
        tb.msg_connect(framer, "out", tx, "in")
        tb.connect(tx, sink)
        tb.keep = (src, framer, tx, sink)
    elif args.role == "channel":
        src = zeromq.pull_source(gr.sizeof_gr_complex, 1, addr_in, 100, False, -1)
        noise = (sps * amplitude**2 * 10 ** (-args.esn0 / 10)) ** 0.5
        taps = [1.0, 0, 0, 0, 0.3j, 0, 0, 0, -0.1] if args.multipath else [1.0]
        chan = channels.channel_model(noise, args.cfo / sps, 1 + args.ppm * 1e-6, taps, args.seed, False)
        sink = zeromq.push_sink(gr.sizeof_gr_complex, 1, addr_out, 100, False, -1)
        tb.connect(src, chan, sink)
        tb.keep = (src, chan, sink)
    else:
        src = zeromq.pull_source(gr.sizeof_gr_complex, 1, addr_out, 100, False, -1)
        rx = ncsc.burst_rx(profile=prof)
        dfr = ncsc.deframer(profile=prof)
        sink = ncsc.decoder_sink(args.out, profile=prof)
        tb.connect(src, rx)
        tb.msg_connect(rx, "out", dfr, "in")
        tb.msg_connect(dfr, "out", sink, "in")
        tb.keep = (src, rx, dfr, sink)
    return tb


def main(argv=None) -> int:
    from gnuradio.ncsc.codec.registry import METRICS  # the one list of metrics

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", choices=["tx", "channel", "rx"])
    p.add_argument("--port", type=int, default=5555, help="TX->channel port; channel->RX uses port + 1")
    p.add_argument("--image", default=None, help="TX: image file, folder or a;b;c (default: a sample photo)")
    p.add_argument("--model", choices=METRICS, default=None, help="TX: codec model (default: the profile's)")
    p.add_argument("--profile", default="ota-16qam-graceful", help="link profile, the same for all three roles")
    p.add_argument("--interval", type=float, default=0.0, help="TX: seconds between images")
    p.add_argument("--esn0", type=float, default=12.0, help="channel: Es/N0 in dB")
    p.add_argument("--cfo", type=float, default=0.01, help="channel: carrier offset, fraction of the symbol rate")
    p.add_argument("--ppm", type=float, default=50.0, help="channel: sample clock offset (ppm)")
    p.add_argument("--multipath", action="store_true", help="channel: add a 3-tap multipath channel")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="ncsc_out", help="RX: output folder")
    args = p.parse_args(argv)
    tb = build(args)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: done.set())
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    tb.start()
    done.wait()
    tb.stop()
    tb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
