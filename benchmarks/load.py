"""Load generators: wrk replaying pre-signed requests (preferred), or a small Python one.

wrk's LuaJIT has no HMAC, so every request is signed beforehand (`benchmarks.payloads`) and written to a
file; the Lua script gives each wrk thread its share, sends each request exactly once, notes when it sent
it (CLOCK_REALTIME, comparable with `time.time()`), and stops the thread after the last answer. wrk itself
runs for its whole `-d` duration regardless, so the runner interrupts it once every thread is done; the
request rate is taken from the first send and the last answer, not from wrk's duration.

The Python generator keeps `concurrency` keep-alive connections, each sending raw bytes and reading the
answer; it measures each request itself. Which one ran is in the result, and the runner measures either
against a bare aiohttp handler in the same run, to show it is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.payloads import SignedRequest
from benchmarks.stats import rate, summarize_ms

WRK_INSTALL_HINT = (
    "wrk not found: using the Python load generator (its ceiling is shown against a bare handler). "
    "For wrk: `sudo apt-get install wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)."
)

LUA_SCRIPT = r"""
-- Written by benchmarks/load.py: replays pre-signed requests, each exactly once, then stops the thread.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME: comparable with Python's time.time()
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

-- setup() and done() run in the main environment.
bench_threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(bench_threads, thread)
end

-- Thread globals (read back by done() through thread:get).
bench_mine, bench_index, bench_sent_at, bench_statuses = {}, {}, {}, {}
bench_sent, bench_received, bench_first, bench_last = 0, 0, 0, 0
bench_armed, bench_promised = false, 0

local function mark_done()
  local f = io.open(bench_done_path, "w")
  if f then f:close() end
end

function init(args)
  local nthreads = tonumber(args[2])
  bench_done_path = args[3] .. "/done-" .. tid
  bench_rate = tonumber(args[4]) / nthreads -- requests a second from this thread; 0: as fast as answered
  local f = assert(io.open(args[1], "rb"))
  local i = 0
  while true do
    local header = f:read("*l")
    if not header then break end
    local data = f:read(tonumber(header))
    if i % nthreads == tid then
      table.insert(bench_mine, data)
      table.insert(bench_index, i)
    end
    i = i + 1
  end
  f:close()
  if #bench_mine == 0 then mark_done() end
end

function delay()
  -- Called before every request: a connection with nothing left to send waits (for an hour).
  -- Each other answer is followed by one request() later, so count requests when promised, not sent.
  bench_armed = true
  if bench_promised >= #bench_mine then return 3600000 end
  bench_promised = bench_promised + 1
  if bench_rate <= 0 then return 0 end
  -- Paced: request k is due k / rate seconds after the first (later when every connection is busy).
  local t = now()
  if bench_promised == 1 then bench_start = t end
  local wait = bench_start + (bench_promised - 1) / bench_rate - t
  if wait <= 0 then return 0 end
  return math.floor(wait * 1000 + 0.5)
end

function request()
  -- Before the run wrk calls request() once on its first thread, only to parse what it returns
  -- (script_verify_request); that call comes before any delay() and must not use up a request.
  if not bench_armed then return bench_mine[1] end
  bench_sent = bench_sent + 1
  local t = now()
  if bench_sent == 1 then bench_first = t end
  bench_sent_at[bench_sent] = t
  return bench_mine[bench_sent]
end

function response(status, headers, body)
  bench_received = bench_received + 1
  bench_statuses[status] = (bench_statuses[status] or 0) + 1
  if bench_received == #bench_mine then
    bench_last = now()
    mark_done()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add(string.format('{"latency_us":{"min":%d,"max":%d,"mean":%.1f', latency.min, latency.max, latency.mean))
  for _, p in ipairs({50, 90, 95, 99, 99.9}) do
    add(string.format(',"p%s":%d', tostring(p), latency:percentile(p)))
  end
  local e = summary.errors
  add(string.format('},"requests":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
  add(',"threads":[')
  for n, thread in ipairs(bench_threads) do
    if n > 1 then add(",") end
    add(string.format('{"first":%.6f,"last":%.6f,"received":%d,"statuses":{',
      thread:get("bench_first"), thread:get("bench_last"), thread:get("bench_received")))
    local sep = ""
    for code, count in pairs(thread:get("bench_statuses")) do
      add(string.format('%s"%d":%d', sep, code, count))
      sep = ","
    end
    add('},"sent":[')
    local index = thread:get("bench_index")
    for i, t in ipairs(thread:get("bench_sent_at")) do
      if i > 1 then add(",") end
      add(string.format("[%d,%.6f]", index[i], t))
    end
    add("]}")
  end
  add("]}")
  io.write("BENCH-JSON ", table.concat(out), "\n")
end
"""


@dataclass
class LoadResult:
    """What one load run measured. Times are wall-clock seconds (`time.time()`)."""

    generator: str
    planned: int
    concurrency: int
    completed: int = 0
    started: float = 0.0
    finished: float = 0.0
    latency_ms: dict[str, float | int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    sent_at: dict[int, float] = field(default_factory=dict)

    @property
    def requests_per_second(self) -> float:
        """Completed requests per second, first send to last answer."""
        return rate(self.completed, self.started, self.finished)

    @property
    def ok(self) -> int:
        """How many answers were HTTP 200."""
        return self.statuses.get(200, 0)

    def to_json(self) -> dict[str, object]:
        """The figures, without the per-request send times."""
        return {
            "generator": self.generator,
            "requests": self.planned,
            "concurrency": self.concurrency,
            "completed": self.completed,
            "http_200": self.ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "requests_per_second": self.requests_per_second,
            "latency_ms": self.latency_ms,
            "seconds": round(self.finished - self.started, 3),
        }


def wrk_path() -> str | None:
    """The wrk executable, or None when it is not installed."""
    return shutil.which("wrk")


def _host(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"need a URL with host and port, not {url!r}")
    return parts.hostname, parts.port, parts.path or "/"


def write_requests(path: Path, requests: Sequence[SignedRequest], url: str) -> None:
    """The file the Lua script reads: for each request, its length on a line, then its bytes."""
    host, port, target = _host(url)
    with path.open("wb") as out:
        for req in requests:
            raw = req.raw(f"{host}:{port}", target)
            out.write(f"{len(raw)}\n".encode() + raw)


def parse_wrk_output(stdout: str, planned: int, concurrency: int) -> LoadResult:
    """Turn the script's `BENCH-JSON` line into a LoadResult; ValueError when it is missing."""
    line = next((x for x in stdout.splitlines() if x.startswith("BENCH-JSON ")), None)
    if line is None:
        raise ValueError("wrk printed no BENCH-JSON line")
    data = json.loads(line.removeprefix("BENCH-JSON "))
    result = LoadResult("wrk", planned, concurrency)
    threads = [t for t in data["threads"] if t["received"]]
    result.completed = sum(t["received"] for t in data["threads"])
    result.started = min((t["first"] for t in threads), default=0.0)
    result.finished = max((t["last"] or t["first"] for t in threads), default=0.0)
    for t in data["threads"]:
        for code, count in t["statuses"].items():
            result.statuses[int(code)] = result.statuses.get(int(code), 0) + count
        result.sent_at.update({int(i): float(at) for i, at in t["sent"]})
    lat = data["latency_us"]
    result.latency_ms = {
        "count": data["requests"],
        "mean": round(lat["mean"] / 1000, 3),
        "p50": lat["p50"] / 1000,
        "p95": lat["p95"] / 1000,
        "p99": lat["p99"] / 1000,
        "p99.9": lat["p99.9"] / 1000,
        "max": lat["max"] / 1000,
    }
    result.errors = {k: int(v) for k, v in data["errors"].items() if k != "status" and v}
    return result


async def run_wrk(
    url: str,
    requests: Sequence[SignedRequest],
    concurrency: int,
    *,
    threads: int = 1,
    rate: float = 0.0,
    answer_timeout: float = 30.0,
    deadline: float = 300.0,
) -> LoadResult:
    """Send every request once through wrk with `concurrency` connections; wait at most `deadline` s.

    `rate` > 0 paces the requests at that many a second (open loop while connections are free).
    """
    exe = wrk_path()
    if exe is None:
        raise FileNotFoundError(WRK_INSTALL_HINT)
    threads = max(1, min(threads, concurrency, len(requests)))
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        work = Path(tmp)
        write_requests(work / "requests.bin", requests, url)
        (work / "replay.lua").write_text(LUA_SCRIPT, encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            exe,
            f"-t{threads}",
            f"-c{concurrency}",
            "-d3600s",
            f"--timeout={int(answer_timeout)}s",
            "-s",
            str(work / "replay.lua"),
            url,
            "--",
            str(work / "requests.bin"),
            str(threads),
            str(work),
            str(rate),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up and proc.returncode is None:
            if await asyncio.to_thread(_finished_threads, work) >= threads:
                break
            await asyncio.sleep(0.005)
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # wrk prints its report (and runs done()) on SIGINT
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
    try:
        return parse_wrk_output(out.decode(errors="replace"), len(requests), concurrency)
    except (ValueError, KeyError) as exc:
        raise RuntimeError(f"wrk failed ({exc}): {err.decode(errors='replace')[-2000:]}") from exc


def _finished_threads(work: Path) -> int:
    return len(list(work.glob("done-*")))


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)
    }
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return status


async def run_python(
    url: str | Sequence[str],
    requests: Sequence[SignedRequest],
    concurrency: int,
    *,
    rate: float = 0.0,
    answer_timeout: float = 30.0,
) -> LoadResult:
    """Send every request once over `concurrency` keep-alive connections, timing each one.

    `rate` > 0 paces the requests at that many a second (open loop while connections are free).
    Several URLs (replicas of one bot) share the connections round robin, as a load balancer would;
    each connection keeps its server, and the requests go to whichever connection is free.
    """
    urls = [url] if isinstance(url, str) else list(url)
    servers = [_host(u) for u in urls]
    # Built before the clock starts, once per server (the Host header differs).
    wires = [[req.raw(f"{host}:{port}", target) for req in requests] for host, port, target in servers]
    pending = iter(enumerate(requests))
    result = LoadResult("python", len(requests), concurrency)
    latencies: list[float] = []
    done_at: list[float] = []
    first = time.time()

    async def connection(number: int) -> None:
        host, port, _ = servers[number % len(servers)]
        wire = wires[number % len(servers)]
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        for k, req in pending:
            index, raw = req.index, wire[k]
            if rate > 0 and (wait := first + k / rate - time.time()) > 0:
                await asyncio.sleep(wait)
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                sent = time.time()
                result.sent_at[index] = sent
                writer.write(raw)
                async with asyncio.timeout(answer_timeout):
                    status = await _read_answer(reader)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                kind = "timeout" if isinstance(exc, TimeoutError) else "read"
                result.errors[kind] = result.errors.get(kind, 0) + 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            finished = time.time()
            latencies.append(finished - sent)
            done_at.append(finished)
            result.statuses[status] = result.statuses.get(status, 0) + 1
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(connection(n) for n in range(min(concurrency, len(requests)))))
    result.completed = len(latencies)
    result.started = min(result.sent_at.values(), default=0.0)
    result.finished = max(done_at, default=0.0)
    result.latency_ms = summarize_ms(latencies)
    return result


def merged(parts: Sequence[LoadResult], concurrency: int) -> LoadResult:
    """One result from loads run side by side (one wrk per replica). Counts add up; the latency
    percentiles are the worst of the parts (wrk reports only its summary), so they err on the slow side.
    """
    out = LoadResult(parts[0].generator, sum(p.planned for p in parts), concurrency)
    out.completed = sum(p.completed for p in parts)
    out.started = min(p.started for p in parts)
    out.finished = max(p.finished for p in parts)
    for part in parts:
        for code, count in part.statuses.items():
            out.statuses[code] = out.statuses.get(code, 0) + count
        for kind, count in part.errors.items():
            out.errors[kind] = out.errors.get(kind, 0) + count
        out.sent_at.update(part.sent_at)
    keys = parts[0].latency_ms.keys()
    out.latency_ms = {k: max(p.latency_ms.get(k, 0) for p in parts) for k in keys}
    total = sum(int(p.latency_ms.get("count", 0)) for p in parts)
    out.latency_ms["count"] = total
    if total:
        mean = sum(float(p.latency_ms.get("mean", 0)) * int(p.latency_ms.get("count", 0)) for p in parts)
        out.latency_ms["mean"] = round(mean / total, 3)
    return out
