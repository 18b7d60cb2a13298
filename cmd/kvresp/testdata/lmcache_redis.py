#!/usr/bin/python3
"""LMCache's redis:// connector traffic, with the real redis-py asyncio client.

Driven by TestE2ELMCacheRedisPy (cmd/kvresp/e2e_lmcache_test.go). It does what LMCache's
RedisConnector does (DESIGN.md section 2): one redis.asyncio.Redis pool, many concurrent tasks,
one command in flight per connection, no pipelining, no MGET/MSET:

  put:    SET <k>kv_bytes <chunk>, then SET <k>metadata <28 bytes>
  exists: EXISTS <k>metadata
  get:    GET <k>metadata (None = miss), then GET <k>kv_bytes (None: DEL <k>metadata)

Every value read back is compared byte for byte. Exits non-zero on the first mismatch.
"""

import argparse
import asyncio
import hashlib
import os
import struct
import sys
import time

import redis
import redis.asyncio

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def chunk_key(i):
    # LMCache's CacheEngineKey string: fmt@world_size@worker_id@chunk_hash@dtype.
    h = hashlib.sha256(b"chunk-%d" % i).hexdigest()[:32]
    return "%s@1@0@%s@bfloat16" % (MODEL, h)


def metadata(i, size):
    # 28 bytes, like LMCache's RemoteMetadata (length, shape, dtype, format).
    return struct.pack("<iiiiiii", size, 2, 32, 256, i, 8, 1)


def chunk(base, i):
    # Unique per chunk in its first 16 bytes, shared random bytes after.
    return struct.pack("<QQ", i, i ^ 0x5A5A5A5A) + base[16:]


async def one_chunk(r, base, i, size):
    k = chunk_key(i)
    kv_key, meta_key = k + "kv_bytes", k + "metadata"
    # Before the put: a miss, reported the way LMCache sees one.
    if await r.exists(meta_key) != 0:
        raise AssertionError("EXISTS %s before SET" % meta_key)
    if await r.get(meta_key) is not None:
        raise AssertionError("GET %s before SET is not None" % meta_key)

    kv, meta = chunk(base, i), metadata(i, size)
    if await r.set(kv_key, kv) is not True:
        raise AssertionError("SET kv_bytes did not answer OK")
    if await r.set(meta_key, meta) is not True:
        raise AssertionError("SET metadata did not answer OK")
    if await r.exists(meta_key) != 1:
        raise AssertionError("EXISTS %s after SET" % meta_key)

    got_meta = await r.get(meta_key)
    if got_meta != meta:
        raise AssertionError("metadata of chunk %d differs: %r" % (i, got_meta))
    got_kv = await r.get(kv_key)
    if got_kv is None:
        await r.delete(meta_key)
        raise AssertionError("kv_bytes of chunk %d missing" % i)
    if len(got_kv) != len(kv) or got_kv != kv:
        raise AssertionError("kv_bytes of chunk %d differ (len %d, want %d)" % (i, len(got_kv), len(kv)))
    del got_kv

    if await r.delete(kv_key, meta_key) != 2:
        raise AssertionError("DEL of chunk %d did not delete 2 keys" % i)
    if await r.exists(meta_key) != 0:
        raise AssertionError("EXISTS after DEL")
    if await r.get(kv_key) is not None:
        raise AssertionError("GET kv_bytes after DEL is not None")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--chunk-mib", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--protocol", type=int, default=2)
    a = ap.parse_args()

    kwargs = {"host": a.host, "port": a.port, "max_connections": 150}
    if a.protocol != 2:
        kwargs["protocol"] = a.protocol  # redis-py >= 5
    r = redis.asyncio.Redis(**kwargs)
    try:
        # On connect LMCache's redis-py sends CLIENT SETINFO; errors are ignored.
        try:
            await r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py")
        except redis.ResponseError:
            pass
        if not await r.ping():
            raise AssertionError("PING")

        size = a.chunk_mib << 20
        base = os.urandom(size)
        sem = asyncio.Semaphore(a.concurrency)
        start = time.monotonic()

        async def bounded(i):
            async with sem:
                await one_chunk(r, base, i, size)

        await asyncio.gather(*(bounded(i) for i in range(a.chunks)))
        secs = time.monotonic() - start
        total = 2 * a.chunks * size
        print("redis-py %s protocol=%d: %d chunks x %d MiB, %d tasks: OK (%.1f MiB/s both ways, informational)"
              % (redis.__version__, a.protocol, a.chunks, a.chunk_mib, a.concurrency, total / secs / (1 << 20)))
    finally:
        await r.close()
        await r.connection_pool.disconnect()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
