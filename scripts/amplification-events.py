#!/usr/bin/env python3
"""Writes the two amplification events of issue 12 as Lambda Kinesis events (python3 stdlib only):

  gzip-bomb.json  10 Kinesis records, each a gzip of 32 MiB: spaces then `{}` (~440 KB event)
  kpl-empty.json  4 KPL aggregates of ~1 MiB, each of 174,752 empty user records (~5.6 MB event)

Usage: scripts/amplification-events.py OUT_DIR
Then:  /usr/bin/time -v target/release/salesflow invoke ingest --event OUT_DIR/gzip-bomb.json --store DIR
(see BENCHMARKS.md, "Hardening").
"""

import base64
import gzip
import hashlib
import json
import os
import sys

SHARD = "shardId-000000000000"
KPL_MAGIC = bytes([0xF3, 0x89, 0x9A, 0xC2])


def sequence(i):
    return "49656193455402811440148478437265408107776498066227700%03d" % i


def record(i, data):
    seq = sequence(i)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "pk-%d" % i,
            "sequenceNumber": seq,
            "data": base64.b64encode(data).decode("ascii"),
            "approximateArrivalTimestamp": 1795424400.0 + i,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": "%s:%s" % (SHARD, seq),
        "eventName": "aws:kinesis:record",
        "awsRegion": "eu-west-3",
        "eventSourceARN": "arn:aws:kinesis:eu-west-3:123456789012:stream/salesflow-receipts",
    }


def gzip_bomb():
    # 32 MiB in all: the most the ingest of main let one record expand to.
    payload = gzip.compress(b" " * ((32 << 20) - 2) + b"{}", compresslevel=9, mtime=0)
    return {"Records": [record(i, payload) for i in range(10)]}


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n == 0:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def field(tag, body):
    """A length-delimited protobuf field (wire type 2)."""
    return varint(tag << 3 | 2) + varint(len(body)) + body


def kpl_aggregate(n):
    # AggregatedRecord { partition_key_table = 1; records = 3 }, Record { partition_key_index = 1; data = 3 }.
    empty_record = field(3, b"\x08\x00" + field(3, b""))
    body = field(1, b"k") + empty_record * n
    return KPL_MAGIC + body + hashlib.md5(body).digest()


def kpl_empty():
    aggregate = kpl_aggregate(174_752)
    assert len(aggregate) <= 1 << 20, len(aggregate)
    return {"Records": [record(i, aggregate) for i in range(4)]}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, event in (("gzip-bomb.json", gzip_bomb()), ("kpl-empty.json", kpl_empty())):
        path = os.path.join(out, name)
        with open(path, "w") as f:
            json.dump(event, f)
        print("%s: %d records, %d bytes" % (path, len(event["Records"]), os.path.getsize(path)))


if __name__ == "__main__":
    main()
