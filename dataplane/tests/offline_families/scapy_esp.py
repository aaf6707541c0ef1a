# scapy's side of tests/offline_families.rs. `encrypt` puts each given inner packet into ESP
# under the SA it names (in UDP for an SA with "udp": RFC 3948), as the peer would send it
# (Ethernet to us); `decrypt` opens every ESP frame of a pcap with the SA of its SPI (AES-GCM
# checking the ICV, which tshark does not) and prints, a JSON line each, what was in it: the
# sequence number, trailer and inner packet, and the UDP header around the ESP if there was one.
import json, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import Ether, IP, IPv6, UDP, raw, rdpcap, wrpcap
from scapy.layers.inet import in4_chksum
from scapy.layers.inet6 import in6_chksum
from scapy.layers.ipsec import ESP, SecurityAssociation

mode, job = sys.argv[1], json.load(open(sys.argv[2]))
sas = {}
keys = {s["spi"]: s["key"] for s in job["sas"]}
for s in job["sas"]:
    outer = IPv6 if ":" in s["src"] else IP
    natt = UDP(sport=4500, dport=4500) if s["udp"] else None
    sas[s["spi"]] = SecurityAssociation(ESP, spi=s["spi"], crypt_algo="AES-GCM",
                                        crypt_key=bytes.fromhex(s["key"]),
                                        tunnel_header=outer(src=s["src"], dst=s["dst"]),
                                        nat_t_header=natt)
macs = {s["spi"]: s.get("mac") for s in job["sas"]}


def udp_sum(u):
    """The ones' complement sum of `u` (a UDP layer) under its pseudo header: 0 when its
    checksum is right."""
    if isinstance(u.underlayer, IPv6):
        return in6_chksum(17, u, raw(u))
    return in4_chksum(17, u.underlayer, raw(u))


if mode == "encrypt":
    frames = []
    for spi, inner in job["packets"]:
        b = bytes.fromhex(inner)
        p = sas[spi].encrypt((IP if b[0] >> 4 == 4 else IPv6)(b))
        if UDP in p:
            # scapy 2.5 builds an IPv4 header with the NAT-T header before the ESP is under
            # it, which leaves the UDP length at 8: have it computed again. It also writes 0
            # into the checksum, which is RFC 3948's for IPv4 but which IPv6 forbids (RFC 8200
            # section 8.1): there have it computed over the ciphertext as well.
            del p[UDP].len
            if isinstance(p, IPv6):
                del p[UDP].chksum
            p = p.__class__(raw(p))
            assert p[UDP].len == len(p[UDP]), "scapy's UDP length"
            if isinstance(p, IPv6):
                assert p[UDP].chksum != 0 and udp_sum(p[UDP]) == 0, "scapy's UDP checksum"
            else:
                assert p[UDP].chksum == 0
        frames.append(Ether(dst=job["dst"], src=macs[spi]) / p)
    wrpcap(job["pcap"], frames)
else:
    for f in rdpcap(job["pcap"]):
        if ESP not in f:
            continue
        esp = f[ESP]
        u = esp.underlayer if isinstance(esp.underlayer, UDP) else None
        udp = None
        if u is not None:
            udp = {"sport": u.sport, "dport": u.dport, "len": u.len, "chksum": u.chksum,
                   "sum": udp_sum(u)}
        sa = sas[esp.spi]
        inner = bytes(sa.decrypt(f.payload))
        # The trailer, which scapy 2.5 does not give right (_ESPPlain.padding is cut from the
        # data after the padding was taken off): the plaintext once more, from AES-GCM itself
        # (RFC 4106: nonce salt || IV, AAD SPI || sequence number).
        k = bytes.fromhex(keys[esp.spi])
        d = bytes(esp.data)
        pt = AESGCM(k[:-4]).decrypt(k[-4:] + d[:8], d[8:], struct.pack("!II", esp.spi, esp.seq))
        padlen, nh = pt[-2], pt[-1]
        assert inner == pt[:-2 - padlen], "scapy and AES-GCM disagree"
        print(json.dumps({"spi": esp.spi, "seq": esp.seq, "nh": nh, "udp": udp,
                          "pad": pt[-2 - padlen:-2].hex(), "inner": inner.hex()}))
