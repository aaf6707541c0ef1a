#!/usr/bin/env python3
"""Writes a pcap of cleartext UDP/IPv4 frames from host 10.1.0.10 to hosts 10.2.T.10 behind
tunnels T = 0 .. TUNNELS-1, for replaying into a gateway (net_pcap rx_pcap=..., infinite_rx=1).

  pcapgen.py OUT --size 64 --tunnels 64 [--only even|odd] [--count 1024] [--dst-mac MAC]
  pcapgen.py OUT --imix ...
  pcapgen.py OUT --reverse ...     (from 10.2.T.10 to 10.1.T.10: the other direction)

--size is the frame as stored in the pcap: Ethernet header to the end of the payload, without
the 4-byte FCS. --imix writes the simple IMIX, 7:4:1 of 64/570/1518-byte frames counted with the
FCS (so 60/566/1514 bytes in the pcap, 349.8 bytes on average), interleaved in a 12-frame
pattern so that every burst of 32 the gateway receives is mixed. The count is then rounded up
to a multiple of 12 so the file keeps the exact ratio.
"""
import argparse
import struct


def checksum(b: bytes) -> int:
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(dst_mac: bytes, tunnel: int, sport: int, size: int, reverse: bool = False) -> bytes:
    payload_len = size - 14 - 20 - 8
    udp = struct.pack("!HHHH", sport, 5001, 8 + payload_len, 0) + bytes(payload_len)
    src, dst = bytes([10, 1, 0, 10]), bytes([10, 2, tunnel, 10])
    src_mac = bytes([2, 0, 0, 0, 1, 0x10])
    if reverse:  # the other site's hosts answering: 10.2.T.10 -> 10.1.T.10
        src, dst = bytes([10, 2, tunnel, 10]), bytes([10, 1, tunnel, 10])
        src_mac = bytes([2, 0, 0, 0, 2, 0x10])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), sport, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + udp


# 7 small, 4 medium, 1 large per 12 frames, spread out (S M S S M S L S M S S M).
IMIX_PATTERN = [60, 566, 60, 60, 566, 60, 1514, 60, 566, 60, 60, 566]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--size", type=int, default=64, help="Ethernet frame size without FCS (60..1514)")
    p.add_argument("--imix", action="store_true", help="7:4:1 IMIX of 60/566/1514-byte frames instead of --size")
    p.add_argument("--tunnels", type=int, default=64)
    p.add_argument("--only", choices=["even", "odd"], help="only tunnels with an even/odd number")
    p.add_argument("--count", type=int, default=1024)
    p.add_argument("--dst-mac", default="02:00:00:00:01:01")
    p.add_argument("--reverse", action="store_true", help="from 10.2.T.10 to 10.1.T.10 instead")
    a = p.parse_args()
    if not 60 <= a.size <= 1514 or not 1 <= a.tunnels <= 256:
        p.error("size must be 60..1514 and tunnels 1..256")
    mac = bytes(int(x, 16) for x in a.dst_mac.split(":"))
    sizes = IMIX_PATTERN if a.imix else [a.size]
    count = -(-a.count // len(sizes)) * len(sizes)
    tunnels = [t for t in range(a.tunnels) if a.only is None or t % 2 == (0 if a.only == "even" else 1)]
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(count):
            # With IMIX, shift the tunnel by one every pattern so that every tunnel sees every size.
            t = i + (i // len(sizes) if a.imix else 0)
            fr = frame(mac, tunnels[t % len(tunnels)], 1024 + i % 4096, sizes[i % len(sizes)], a.reverse)
            f.write(struct.pack("<IIII", 0, 0, len(fr), len(fr)) + fr)


if __name__ == "__main__":
    main()
