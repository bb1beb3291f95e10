#!/usr/bin/env python3
"""Writes the seed corpora of the fuzzers into tests/fuzz/corpus/NAME/ (checked in; rerun after a format change).
Each seed is a valid input, so the fuzzers start past the first checks of each parser."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(name, seed, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, seed), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- api: requests separated by NUL, each "METHOD /path\nBODY"
def reqs(*rs):
    return b"\0".join(r.encode() for r in rs)


put("api", "preboot-sequence", reqs(
    'PUT /logger\n{"log_path":"/dev/null","level":"Info","show_level":true,"show_log_origin":false}',
    'PUT /metrics\n{"metrics_path":"/dev/null"}',
    'PUT /machine-config\n{"vcpu_count":2,"mem_size_mib":256,"smt":false,"track_dirty_pages":true}',
    'PATCH /machine-config\n{"mem_size_mib":512}',
    'PUT /boot-source\n{"kernel_image_path":"/dev/null","boot_args":"console=ttyS0","initrd_path":"/dev/null"}',
    'PUT /drives/rootfs\n{"drive_id":"rootfs","path_on_host":"/dev/null","is_root_device":true,"is_read_only":false,'
    '"cache_type":"Unsafe","io_engine":"Sync","rate_limiter":null}',
    'PUT /network-interfaces/eth0\n{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"06:00:ac:10:00:02"}',
    'PUT /serial\n{"serial_out_path":"/dev/null"}',
    'GET /vm/config\n',
    'GET /machine-config\n',
    'GET /\n'))
put("api", "gets", reqs("GET /\n", "GET /version\n", "GET /vm/config\n", "GET /nope\n", "DELETE /drives/x\n"))
put("api", "runtime-before-boot", reqs('PATCH /vm\n{"state":"Paused"}', 'PUT /actions\n{"action_type":"FlushMetrics"}',
                                       'PATCH /drives/rootfs\n{"drive_id":"rootfs","path_on_host":"/dev/null"}',
                                       'PUT /snapshot/create\n{"snapshot_path":"a","mem_file_path":"b"}',
                                       'PUT /balloon\n{"amount_mib":1}'))
put("api", "bad-bodies", reqs('PUT /machine-config\n{"vcpu_count":0,"mem_size_mib":1}', 'PUT /machine-config\n[]',
                              'PUT /machine-config\n{"vcpu_count":1,"vcpu_count":2}',
                              'PUT /logger\n{"level":"I\\nfo"}', 'PUT /drives/a\n{"drive_id":"b"}'))

# ---- config: a --config-file
cfg = {
    "boot-source": {"kernel_image_path": "/dev/null", "boot_args": "console=ttyS0 reboot=k", "initrd_path": None},
    "drives": [{"drive_id": "rootfs", "path_on_host": "/dev/null", "is_root_device": True, "is_read_only": True},
               {"drive_id": "data", "path_on_host": "/dev/null", "is_root_device": False, "is_read_only": False,
                "io_engine": "Async"}],
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 128, "smt": False},
    "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}],
    "logger": {"log_path": "/dev/null", "level": "Warning"},
    "metrics": {"metrics_path": "/dev/null"},
}
put("config", "full", json.dumps(cfg, indent=1))
put("config", "minimal", json.dumps({"boot-source": {"kernel_image_path": "/dev/null"}}))
put("config", "unimplemented", json.dumps({"boot-source": {"kernel_image_path": "/x"}, "balloon": {}, "vsock": None}))


# ---- snapshot: a state file without its CRC-32 (the harness appends it)
def section(name, version, body):
    n = name.encode()
    return struct.pack("<B", len(n)) + n + struct.pack("<II", version, len(body)) + body


def snapshot(sections, nr_vcpus=1, mem=128 << 20, version=b"0.1.0"):
    head = b"EMBERSNP" + struct.pack("<II", 1, 1) + struct.pack("<B", len(version)) + version
    head += struct.pack("<QII", mem, nr_vcpus, 0) + struct.pack("<Q", len(sections))
    return head + sections


vm = section("vm", 1, struct.pack("<QQI", 1, 2, 3) + section("device", 1, b"\x01\x02" * 8))
vcpu = section("vcpu", 1, bytes(range(64)))
put("snapshot", "vm-vcpu", snapshot(vm + vcpu))
put("snapshot", "empty-sections", snapshot(b""))
put("snapshot", "nested", snapshot(section("vm", 1, section("virtio", 1, section("queue", 1, b"\0" * 16)))))

# ---- uffd_msg: the first byte picks how many regions the caller takes (1 + b % 64), then the JSON
regions = [{"base_host_virt_addr": 0x7f0000000000, "size": 0x8000000, "offset": 0, "page_size": 4096,
            "page_size_kib": 4096},
           {"base_host_virt_addr": 0x7f1000000000, "size": 0x200000, "offset": 0x8000000, "page_size": 2097152,
            "page_size_kib": 2097152}]
put("uffd_msg", "two-regions", b"\x3f" + json.dumps(regions).encode())
put("uffd_msg", "one-region", b"\x00" + json.dumps(regions[:1]).encode())
put("uffd_msg", "old-name-only", b"\x03" + json.dumps([{"base_host_virt_addr": 4096, "size": 4096, "offset": 0,
                                                         "page_size_kib": 4096}]).encode())


# ---- virtq: 8 header bytes (size = 1 << (b0 % 10), flags b1, ring addresses), then 64 KiB of guest RAM
def virtq(size_log2, flags, chains, indirect=False):
    desc, avail, used, data = 0x1000, 0x3000, 0x4000, 0x8000
    ram = bytearray(64 << 10)
    hdr = bytes([size_log2, flags]) + struct.pack("<HHH", desc >> (4 if flags & 2 else 0),
                                                  avail >> (1 if flags & 4 else 0), used >> (2 if flags & 8 else 0))
    d = 0
    heads = []
    for chain in chains:
        heads.append(d)
        for i, (ln, write) in enumerate(chain):
            nxt = d + 1 if i + 1 < len(chain) else 0
            fl = (1 if i + 1 < len(chain) else 0) | (2 if write else 0)
            struct.pack_into("<QIHH", ram, desc + 16 * d, data + 512 * d, ln, fl, nxt)
            d += 1
    if indirect:  # one more chain: an indirect table of two descriptors
        tbl = 0x6000
        struct.pack_into("<QIHH", ram, tbl, data, 16, 1, 1)
        struct.pack_into("<QIHH", ram, tbl + 16, data + 512, 64, 2, 0)
        struct.pack_into("<QIHH", ram, desc + 16 * d, tbl, 32, 4, 0)
        heads.append(d)
    struct.pack_into("<HH", ram, avail, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", ram, avail + 4 + 2 * i, h)
    return hdr + bytes(ram[: 0x9000])


put("virtq", "blk-like", virtq(4, 0, [[(16, False), (512, False), (1, True)], [(16, False), (4096, True), (1, True)]]))
put("virtq", "net-like-event-idx", virtq(8, 1 | 2 | 4 | 8, [[(1526, False)], [(1526, True)]] * 3))
put("virtq", "indirect", virtq(4, 0x10, [[(8, False)]], indirect=True))

# ---- http: raw bytes; the first byte picks the feeding step (1 + b % 64)
for name, raw in [
        ("get", b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"),
        ("put", b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: 35\r\n\r\n{\"vcpu_count\":1,\"mem_size_mib\":128}"),
        ("chunked", b"PUT /drives/rootfs HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
                    b"4\r\n{\"a\"\r\nA\r\n: 12345678\r\n1\r\n}\r\n0\r\n\r\n"),
        ("http10", b"GET /version?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")]:
    put("http", name, b"\x07" + raw)

# ---- mmds_net: guest frames, each 2-byte little-endian length, a flags byte, the frame
GUEST_MAC, GUEST_IP, MMDS_IP = bytes.fromhex("0600ac100002"), bytes([10, 0, 0, 2]), bytes([169, 254, 169, 254])


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp_frame(seq, ack, flags, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = GUEST_IP + MMDS_IP + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, GUEST_IP, MMDS_IP)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return bytes.fromhex("060123456701") + GUEST_MAC + b"\x08\x00" + ip + tcp


def arp_request():
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, GUEST_MAC, GUEST_IP, b"\0" * 6, MMDS_IP)
    return b"\xff" * 6 + GUEST_MAC + b"\x08\x06" + arp


def frames(*fs):
    return b"".join(struct.pack("<HB", len(f), fl) + f for f, fl in fs)


get = b"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nAccept: application/json\r\n\r\n"
token = b"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n"
put("mmds_net", "arp", frames((arp_request(), 0)))
put("mmds_net", "syn-get", frames((arp_request(), 0), (tcp_frame(1000, 0, 0x02), 0),
                                  (tcp_frame(1001, 1, 0x18, get), 0), (tcp_frame(1001 + len(get), 2, 0x11), 0)))
put("mmds_net", "v2-token", frames((tcp_frame(5000, 0, 0x02), 4), (tcp_frame(5001, 1, 0x18, token), 4)))
