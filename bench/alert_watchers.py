"""Many alert watchers in one process (grpc.aio), for bench/alerts_bench.py: each opens a
WatchAlerts stream and notes the wall-clock time each alert arrives. Prints JSON lines:
{"ready": n} once every stream is open, then one {"w": i, "p": position, "t": time} per
alert received, and {"done": true} when each watcher has `expect` alerts (or on timeout).

A separate process so the watchers do not share the server's interpreter lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import grpc

from medservice.v1 import alerts_pb2, alerts_pb2_grpc


async def watch(stub: alerts_pb2_grpc.AlertServiceStub, metadata: tuple[tuple[str, str]],
                parent: str, index: int, expect: int, opened: asyncio.Event,
                counter: list[int], out: list[str]) -> None:
    call = stub.WatchAlerts(alerts_pb2.WatchAlertsRequest(parent=parent), metadata=metadata)
    got = 0
    first = True
    async for event in call:
        now = time.time()
        if first:
            first = False
            counter[0] += 1
            if counter[0] == counter[1]:
                opened.set()
        if event.HasField("alert"):
            out.append(json.dumps({"w": index, "p": event.alert.position, "t": now}))
            got += 1
            if got >= expect:
                call.cancel()
                return


async def main(args: argparse.Namespace) -> None:
    metadata = (("authorization", f"Bearer {args.token}"),)
    out: list[str] = []
    channels = [grpc.aio.insecure_channel(args.target) for _ in range(args.channels)]
    opened = asyncio.Event()
    counter = [0, args.watchers]
    tasks = [asyncio.create_task(watch(
        alerts_pb2_grpc.AlertServiceStub(channels[i % len(channels)]), metadata,
        args.parent, i, args.expect, opened, counter, out)) for i in range(args.watchers)]
    await asyncio.wait_for(opened.wait(), 60)
    print(json.dumps({"ready": args.watchers}), flush=True)
    await asyncio.wait(tasks, timeout=args.timeout)
    for t in tasks:
        t.cancel()
    sys.stdout.write("\n".join(out) + "\n")
    print(json.dumps({"done": True}), flush=True)
    for c in channels:
        await c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--parent", required=True)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=180)
    asyncio.run(main(parser.parse_args()))
