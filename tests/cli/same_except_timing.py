#!/usr/bin/env python3
"""Byte comparison of adalog quantized files, except the one timing-dependent field.

    same_except_timing.py A.adalog B.adalog [C.adalog ...]

Each file is checked against docs/model_format.md (magic, version, payload size, FNV-1a 64
checksum, the section order MODL EMBD BLCK... HEAD META), then every file must equal the first
byte for byte once the value of META's "search_seconds" (the calibration wall time, which differs
between runs) is cut out. Exactly one "search_seconds" key with a finite number must be present,
so a renamed key cannot make the comparison vacuous. Exit 0 when all are equal, 1 otherwise, with
the first differing section and offset. Used by tests/cli/quantize.sh (determinism over thread
counts).
"""
import math
import struct
import sys

MAGIC = b"ADALOGQ\0"
TIMING_KEY = b"search_seconds"


def fnv1a64(data, version):
    # Version 2: the standard FNV-1a 64 offset basis 14695981039346656037. Version 1 files were
    # written from 1469598103934665603 (the same with its last digit lost; docs/model_format.md).
    h = 14695981039346656037 if version == 2 else 1469598103934665603
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def normalize(path):
    """Returns [(section tag, bytes)] with the timing value removed; raises ValueError."""
    data = open(path, "rb").read()
    if len(data) < 32 or data[:8] != MAGIC:
        raise ValueError(f"{path}: not an adalog quantized file")
    version, flags, payload = struct.unpack_from("<IIQ", data, 8)
    if version not in (1, 2) or flags != 0:
        raise ValueError(f"{path}: version {version} flags {flags}, this script knows versions 1 and 2")
    if 24 + payload + 8 != len(data):
        raise ValueError(f"{path}: payload {payload} does not match the file size {len(data)}")
    (checksum,) = struct.unpack_from("<Q", data, 24 + payload)
    if fnv1a64(data[: 24 + payload], version) != checksum:
        raise ValueError(f"{path}: checksum mismatch")
    out = [("header", data[:24 - 8])]  # magic, version, flags (payload size depends on the timing)
    pos, end, tags = 24, 24 + payload, []
    while pos < end:
        tag = data[pos:pos + 4].decode("ascii", "replace")
        (zero, length) = struct.unpack_from("<IQ", data, pos + 4)
        body = data[pos + 16:pos + 16 + length]
        if zero != 0 or len(body) != length:
            raise ValueError(f"{path}: bad section header at offset {pos}")
        tags.append(tag)
        if tag == "META":
            body = strip_timing(path, body)
        out.append((f"{tag}#{tags.count(tag) - 1}", body))
        pos += 16 + length
    order = "".join(t[0] for t in tags)
    if tags[:2] != ["MODL", "EMBD"] or tags[-2:] != ["HEAD", "META"] or set(tags[2:-2]) != {"BLCK"}:
        raise ValueError(f"{path}: unexpected section order {tags} ({order})")
    return out


def strip_timing(path, body):
    (count,) = struct.unpack_from("<I", body, 0)
    pos, found, kept = 4, 0, bytearray(body[:4])
    for _ in range(count):
        (klen,) = struct.unpack_from("<I", body, pos)
        key = body[pos + 4:pos + 4 + klen]
        pos += 4 + klen
        (vlen,) = struct.unpack_from("<I", body, pos)
        value = body[pos + 4:pos + 4 + vlen]
        pos += 4 + vlen
        kept += struct.pack("<I", klen) + key
        if key == TIMING_KEY:
            found += 1
            if not math.isfinite(float(value)):
                raise ValueError(f"{path}: search_seconds={value!r} is not a finite number")
            kept += b"<timing>"
        else:
            kept += struct.pack("<I", vlen) + value
    if pos != len(body):
        raise ValueError(f"{path}: META has {len(body) - pos} trailing bytes")
    if found != 1:
        raise ValueError(f"{path}: META has {found} search_seconds entries, want 1")
    return bytes(kept)


def main(paths):
    if len(paths) < 2:
        print(__doc__)
        return 2
    try:
        ref = normalize(paths[0])
        for p in paths[1:]:
            got = normalize(p)
            for (ta, a), (tb, b) in zip(ref, got):
                if ta != tb or a != b:
                    at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
                    print(f"{p} differs from {paths[0]} in section {ta} / {tb} at byte {at} of the body")
                    return 1
            if len(ref) != len(got):
                print(f"{p} has {len(got)} sections, {paths[0]} has {len(ref)}")
                return 1
    except (OSError, ValueError, struct.error) as e:
        print(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
