"""Many browsers' worth of Server-Sent Event streams in one process (httpx, asyncio), for
bench/sse_fanout_bench.py: each opens GET /v1/{parent}/alerts:watch and notes the wall-clock
time each alert event arrives. Prints JSON lines: {"ready": n} once every stream has had its
opening heartbeat, then one {"w": i, "p": position, "t": time} per alert, then {"done": true}.

A separate process so that the readers do not share the server's interpreter lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import httpx


async def watch(client: httpx.AsyncClient, url: str, index: int, expect: int,
                opened: asyncio.Event, counter: list[int], out: list[str]) -> None:
    got, first = 0, True
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        event, data = "", ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif not line and data:
                now = time.time()
                if first:
                    first = False
                    counter[0] += 1
                    if counter[0] == counter[1]:
                        opened.set()
                if event == "alert":
                    position = int(json.loads(data)["alert"]["position"])
                    out.append(json.dumps({"w": index, "p": position, "t": now}))
                    got += 1
                    if got >= expect:
                        return
                event, data = "", ""


async def main(args: argparse.Namespace) -> None:
    out: list[str] = []
    opened = asyncio.Event()
    counter = [0, args.watchers]
    limits = httpx.Limits(max_connections=args.watchers + 10,
                          max_keepalive_connections=args.watchers + 10)
    url = f"{args.base}/v1/{args.parent}/alerts:watch"
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {args.token}"},
                                 limits=limits, timeout=httpx.Timeout(30, read=60)) as client:
        tasks = [asyncio.create_task(watch(client, url, i, args.expect, opened, counter, out))
                 for i in range(args.watchers)]
        await asyncio.wait_for(opened.wait(), 60)
        print(json.dumps({"ready": args.watchers}), flush=True)
        await asyncio.wait(tasks, timeout=args.timeout)
        for t in tasks:
            t.cancel()
    sys.stdout.write("\n".join(out) + "\n")
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--parent", required=True)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=120)
    asyncio.run(main(parser.parse_args()))
