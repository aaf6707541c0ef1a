# scapy's side of tests/offline_fragments.rs: it cuts the ESP datagrams scapy_esp.py encrypted
# (one frame each, raw or in UDP) into IPv4 fragments as a router on the way would, and writes
# what the gateway is to read. Good sets are cut by scapy's own fragment() and fed in order,
# reversed or shuffled, with an exact copy of one fragment, or interleaved with the previous
# set. Bad sets are cut the same way, then one fragment is left out or crafted by hand
# (IP(id=..., flags=..., frag=...)), and fed so that their fault comes last: every fault ends
# the datagram, so nothing of it is left waiting. Prints, as JSON, each set's fragment count
# and the index of its last fragment in the pcap (a good datagram is whole, and sent on, then).
import json, random, sys
from scapy.all import IP, Ether, Raw, raw, rdpcap, wrpcap
from scapy.layers.inet import fragment

job = json.load(open(sys.argv[1]))
esp = rdpcap(job["esp"])
sets = job["sets"]
assert len(esp) == len(sets), "a set per encrypted datagram"


def by_hand(p, frag, more, data):
    """A fragment of `p`'s datagram built field by field: offset `frag` (8-byte units)."""
    ip = p[IP]
    return Ether(dst=p.dst, src=p.src) / IP(
        src=ip.src, dst=ip.dst, id=ip.id, ttl=ip.ttl, proto=ip.proto,
        flags="MF" if more else 0, frag=frag) / Raw(data)


chunks = []
for k, (p, s) in enumerate(zip(esp, sets)):
    # Each datagram its own identification, as its sender would give it (scapy's SA leaves
    # every tunnel header at 1).
    p[IP].id = s["ident"]
    del p[IP].chksum
    p = Ether(raw(p))
    data = raw(p[IP].payload)
    pieces = fragment(p, fragsize=s["fragsize"])
    assert len(pieces) >= 2, f"set {k}: {len(data)} bytes in one piece"
    # scapy cut it right: the pieces' data, by offset, is the datagram's.
    assert b"".join(raw(f[IP].payload) for f in pieces) == data, f"set {k}"
    assert all(f[IP].flags.MF for f in pieces[:-1]) and not pieces[-1][IP].flags.MF
    kind = s["kind"]
    assert kind == "good" or len(pieces) >= 3, f"set {k}: no middle piece"
    if kind == "good":
        order = s["order"]
        if order == "reversed":
            pieces.reverse()
        elif order == "shuffled":
            assert len(pieces) >= 3, f"set {k}: too few pieces to shuffle"
            cut = list(range(len(pieces)))
            fed = list(cut)
            rnd = random.Random(job["seed"] + k)
            while fed in (cut, cut[::-1]):
                rnd.shuffle(fed)
            pieces = [pieces[i] for i in fed]
        if s["duplicate"]:
            # Before the last piece arrives: a copy after the datagram is whole would start a
            # new one, which times out.
            pieces.insert(1, Ether(raw(pieces[0])))
    elif kind == "overlap":
        # The second piece starts 8 bytes early (the same bytes as the first's last eight):
        # RFC 5722 drops the datagram anyway.
        size = len(raw(pieces[0][IP].payload))
        end = 2 * size
        pieces = [pieces[0]] + pieces[2:] + [by_hand(p, (size - 8) // 8, True, data[size - 8:end])]
    elif kind == "incomplete":
        # The second piece never comes: the datagram times out.
        del pieces[1]
    elif kind == "oversize":
        # In place of the last piece, one 65512 bytes in: 20 + 65512 + 32 > 65535.
        pieces = pieces[:-1] + [by_hand(p, 8189, False, data[-32:])]
    elif kind == "malformed":
        # The second piece one byte short, MF still set: not a multiple of 8.
        size = len(raw(pieces[0][IP].payload))
        piece = by_hand(p, size // 8, True, data[size:2 * size - 1])
        pieces = [pieces[0]] + pieces[2:] + [piece]
    else:
        raise ValueError(kind)
    if s.get("interleave"):
        # Alternately with the previous set's fragments (told apart by identification).
        prev = chunks.pop()
        assert prev[0] is not None, f"set {k}: mixed with a set mixed already"
        mixed = []
        for i in range(max(len(prev[1]), len(pieces))):
            mixed += [(j, c[i]) for j, c in ((k - 1, prev[1]), (k, pieces)) if i < len(c)]
        chunks.append((None, mixed))
    else:
        chunks.append((k, pieces))

frames, last, count = [], [None] * len(sets), [0] * len(sets)
for k, pieces in chunks:
    for item in pieces:
        j, f = item if k is None else (k, item)
        last[j] = len(frames)
        count[j] += 1
        frames.append(f)
wrpcap(job["pcap"], frames)
print(json.dumps({"sets": [{"fragments": c, "last": i} for c, i in zip(count, last)]}))
