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


# ---- kernel: a flags byte (bit 0 use_pvh, bit 1 host_decompress), then the image; decompress: a payload
def elf64(entry, phdrs, size):
    """An x86-64 ELF of `size` bytes: phdrs are (type, offset, filesz, paddr, memsz) after the header."""
    f = bytearray(size)
    f[:16] = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into("<HHIQQQIHHHHHH", f, 16, 2, 62, 1, entry, 64, 0, 0, 64, 56, len(phdrs), 64, 0, 0)
    for i, (typ, off, filesz, paddr, memsz) in enumerate(phdrs):
        struct.pack_into("<IIQQQQQQ", f, 64 + 56 * i, typ, 5, off, paddr, paddr, filesz, memsz, 0x1000)
    for i in range(0x200, size):
        f[i] = (i * 7) & 0xFF
    return bytes(f)


def xen_note(entry):
    return struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", entry)


vmlinux = elf64(0x200000, [(1, 0x200, 0x200, 0x200000, 0x3000)], 0x400)
pvh = bytearray(elf64(0x200000, [(1, 0x200, 0x200, 0x200000, 0x3000), (4, 0x180, 20, 0, 0)], 0x400))
pvh[0x180:0x194] = xen_note(0x200040)
pvh = bytes(pvh)


def bzimage(payload=b"", kernel_len=0x800):
    """Protocol 2.15, relocatable, 64-bit, 2 setup sectors; the payload (if any) starts the protected-mode part."""
    setup = 3 * 512
    body = payload + bytes((i * 7) & 0xFF for i in range(max(0, kernel_len - len(payload))))
    f = bytearray(setup) + body
    f[0x1F1] = 2
    struct.pack_into("<H", f, 0x1FE, 0xAA55)
    f[0x200:0x202] = b"\xeb\x6a"
    f[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", f, 0x206, 0x020F)
    f[0x211] = 1
    struct.pack_into("<I", f, 0x22C, 0x7FFFFFFF)
    f[0x234] = 1
    struct.pack_into("<H", f, 0x236, 1)
    struct.pack_into("<I", f, 0x238, 2047)
    struct.pack_into("<II", f, 0x248, 0, len(payload))
    struct.pack_into("<Q", f, 0x258, 0x1000000)
    struct.pack_into("<I", f, 0x260, 0x3000)
    return bytes(f)


def tool(cmd, data):
    """zstd and lz4 have no module in Python's standard library: their command-line tools compress."""
    import subprocess
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def payloads(elf):
    import gzip
    import lzma
    size = struct.pack("<I", len(elf))
    return {"gzip": gzip.compress(elf, mtime=0),  # gzip's own trailer ends in the size
            # A 4 KiB dictionary, not xz's default 8 MiB: liblzma allocates and clears the stated dictionary on
            # every decode, which made each run of the fuzzers cost 8 MiB of page faults.
            "xz": lzma.compress(elf, check=lzma.CHECK_CRC32,
                                filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 4096}]) + size,
            "zstd": tool(["zstd", "-q", "-c", "--no-check"], elf) + size,
            "lz4": tool(["lz4", "-q", "-l", "-c"], elf) + size}


put("kernel", "elf", b"\x00" + vmlinux)
put("kernel", "elf-pvh", b"\x01" + pvh)
put("kernel", "bzimage", b"\x00" + bzimage())
# Once accepted with its entry (load + 0x200) past RAM: a kernel of 0x100 bytes at the end of the 8 MiB guest.
short = bytearray(bzimage(kernel_len=0x100))
short[0x234] = 0
struct.pack_into("<Q", short, 0x258, (8 << 20) - 0x100)
struct.pack_into("<I", short, 0x260, 0x100)
put("kernel", "bzimage-entry-past-ram", b"\x00" + bytes(short))
for fmt, p in payloads(pvh).items():
    put("kernel", "bzimage-" + fmt, b"\x03" + bzimage(p))
    put("decompress", fmt, p)


# ---- blk, net_tx, vsock (tests/fuzz/fuzz_virtio.h): 4 header bytes, then guest RAM from 0. Queue q's
# rings: descriptors at 0x400 q, avail at +0x100, used at +0x200; the rest from 0x1000 on.
class Guest:
    def __init__(self, size=0x2000):
        self.ram = bytearray(size)
        self.next = {}

    def desc(self, q, i, addr, ln, flags, nxt=0):
        struct.pack_into("<QIHH", self.ram, 0x400 * q + 16 * i, addr, ln, flags, nxt)

    def chain(self, q, bufs):
        """bufs: (addr, len, device_writes); returns the head. Descriptors are handed out in order."""
        head = self.next.get(q, 0)
        for k, (addr, ln, w) in enumerate(bufs):
            i = head + k
            last = k + 1 == len(bufs)
            self.desc(q, i, addr, ln, (0 if last else 1) | (2 if w else 0), 0 if last else i + 1)
        self.next[q] = head + len(bufs)
        avail = 0x400 * q + 0x100
        idx = struct.unpack_from("<H", self.ram, avail + 2)[0]
        struct.pack_into("<H", self.ram, avail + 4 + 2 * idx, head)
        struct.pack_into("<H", self.ram, avail + 2, idx + 1)
        return head

    def put(self, addr, data):
        self.ram[addr:addr + len(data)] = data

    def seed(self, b0, sizes, b2=0, b3=0):
        return bytes([b0, sizes, b2, b3]) + bytes(self.ram)


Q16 = 0x3F  # every queue 16 entries (2 << 3)

g = Guest()
reqs = [(0, 0, 512), (1, 1, 1024), (4, 0, 0), (8, 0, 20), (99, 0, 0), (0, 127, 1024)]  # 16 descriptors
for i, (typ, sector, ln) in enumerate(reqs):
    g.put(0x1000 + 16 * i, struct.pack("<IIQ", typ, 0, sector))
    data = [(0x10000 + 0x1000 * i, ln, typ != 1)] if ln else []
    g.chain(0, [(0x1000 + 16 * i, 16, False)] + data + [(0x1800 + i, 1, True)])
put("blk", "requests", g.seed(0x00, Q16))
g = Guest()  # read-only drive, EVENT_IDX, indirect: a write refused, a split header, a status byte the device may not write
g.put(0x1000, struct.pack("<IIQ", 1, 0, 2))
g.put(0x1100, struct.pack("<QIHH", 0x1000, 16, 1, 1) + struct.pack("<QIHH", 0x10000, 512, 1, 2) +
      struct.pack("<QIHH", 0x1800, 1, 2, 0))
g.desc(0, 0, 0x1100, 48, 4)
g.next[0] = 1
struct.pack_into("<HH", g.ram, 0x100 + 2, 1, 0)
g.put(0x1010, struct.pack("<IIQ", 0, 0, 3))
g.chain(0, [(0x1010, 8, False), (0x1018, 8, False), (0x20000, 512, True), (0x1801, 1, True)])
g.put(0x1020, struct.pack("<IIQ", 0, 0, 0))
g.chain(0, [(0x1020, 16, False), (0x1802, 1, False)])
put("blk", "ro-indirect-hostile", g.seed(0x01 | 0x02 | 0x04, Q16))


def vnet_hdr(flags=0, gso=0, hdr_len=0, gso_size=0, csum_start=0, csum_off=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, csum_start, csum_off, 0)


eth = bytes.fromhex("ffffffffffff0600ac1000020800")
g = Guest()
for i in range(4):
    g.chain(0, [(0x10000 + 0x800 * i, 1526, True)])  # rx buffers
g.put(0x2000, vnet_hdr() + eth + bytes(46))
g.chain(1, [(0x2000, 12 + 60, False)])
g.put(0x3000, vnet_hdr(1, 0, 0, 0, 34, 16))
g.put(0x3100, eth + bytes(range(86)))
g.chain(1, [(0x3000, 12, False), (0x3100, 100, False)])
put("net_tx", "tx-rx", g.seed(0x01 | 0x08 | 0x10 | 0x20, Q16, 2, 4))
g = Guest()
g.put(0x2000, vnet_hdr(1, 1, 54, 1448, 34, 16) + eth + bytes(40) + bytes(3000))
g.chain(1, [(0x2000, 12 + 14 + 40 + 3000, False)])
g.chain(1, [(0x2000, 8, False)])  # shorter than its header: the device stops
put("net_tx", "tso-then-short", g.seed(0x08, Q16))


def vsock_pkt(op, src_port, dst_port, payload=b"", flags=0, buf_alloc=65536, fwd_cnt=0):
    return struct.pack("<QQIIIHHIII", 3, 2, src_port, dst_port, len(payload), 1, op, flags, buf_alloc,
                       fwd_cnt) + payload


def vsock_guest(pkts):
    g = Guest(0x4000)
    for i in range(4):
        g.chain(0, [(0x20000 + 0x2000 * i, 44 + 4096, True)])
    for i in range(2):
        g.chain(2, [(0x1F00 + 4 * i, 4, True)])
    for i, p in enumerate(pkts):
        g.put(0x2000 + 0x200 * i, p)
        g.chain(1, [(0x2000 + 0x200 * i, 44, False)] + ([(0x2000 + 0x200 * i + 44, len(p) - 44, False)] if len(p) > 44
                                                          else []))
    return g


put("vsock", "guest-connect-rw", vsock_guest([
    vsock_pkt(1, 5000, 1024), vsock_pkt(5, 5000, 1024, b"hello host"), vsock_pkt(7, 5000, 1024),
    vsock_pkt(6, 5000, 1024, fwd_cnt=3), vsock_pkt(4, 5000, 1024, flags=3), vsock_pkt(3, 5000, 1024),
    vsock_pkt(1, 5001, 1025)]).seed(0x00, Q16))
put("vsock", "host-connect", vsock_guest([
    vsock_pkt(2, 1234, 1 << 30), vsock_pkt(5, 1234, 1 << 30, b"hi"), vsock_pkt(6, 1234, 1 << 30, fwd_cnt=64)])
    .seed(0x01, Q16, 1, 4))

# ---- jailer_args: argv after the program name, NUL-separated
for name, args in [
        ("minimal", ["--id", "vm-1", "--exec-file", "/usr/bin/true", "--uid", "123", "--gid", "456"]),
        ("full", ["--id=a-b", "--exec-file=/usr/bin/true", "--uid=0", "--gid=0", "--chroot-base-dir=/srv/j/",
                  "--netns", "/var/run/netns/x", "--cgroup-version", "2", "--cgroup", "cpu.max=100000 100000",
                  "--cgroup", "memory.max=1G", "--parent-cgroup", "/ember/vms/", "--resource-limit", "fsize=10",
                  "--resource-limit=no-file=64", "--daemonize", "--new-pid-ns", "--keep-jail", "--", "--api-sock",
                  "/run/x.sock"]),
        ("help", ["-h", "--version"])]:
    put("jailer_args", name, "\0".join(args))
