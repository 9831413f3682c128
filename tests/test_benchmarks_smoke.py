"""The benchmark package's pure helpers (the load itself runs only with `python -m benchmarks`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from slack_sdk.signature import SignatureVerifier

from benchmarks import payloads
from benchmarks.load import LUA_SCRIPT, parse_wrk_output, write_requests
from benchmarks.stats import percentile, rate, ratio, summarize_ms


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..100 is 50, p99 is 99, p100 the largest; an empty list gives 0."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99.9) == 7.0
    assert percentile([], 50) == 0.0
    with pytest.raises(ValueError):
        percentile(values, 0)


def test_summary_is_in_milliseconds() -> None:
    """Latencies go in as seconds and come out as ms, sorted whatever the input order."""
    summary = summarize_ms([0.003, 0.001, 0.002])
    assert summary["count"] == 3
    assert (summary["p50"], summary["max"], summary["mean"]) == (2.0, 3.0, 2.0)
    assert summarize_ms([])["count"] == 0
    assert rate(100, 10.0, 12.0) == 50.0
    assert rate(0, 1.0, 1.0) == 0.0
    assert ratio(3.0, 4.0) == 0.75
    assert ratio(1.0, 0.0) is None


def test_signed_commands_pass_slack_verification() -> None:
    """Each pre-signed command carries a signature slack_sdk accepts, a unique token and trigger_id."""
    now = int(time.time())
    reqs = payloads.send_commands(
        "t1",
        3,
        secret="bench-secret",
        timestamp=now,
        team_id="T0PLAYGRND",
        channels=payloads.channel_ids(2),
        user_id="U0ADMIN",
        response_url="http://127.0.0.1:9/response/bench",
    )
    verifier = SignatureVerifier("bench-secret")
    for req in reqs:
        headers = dict(req.headers)
        assert verifier.is_valid(
            body=req.body,
            timestamp=headers["X-Slack-Request-Timestamp"],
            signature=headers["X-Slack-Signature"],
        )
        assert payloads.tokens_in(req.body.decode()) == [req.token]
    assert [r.token for r in reqs] == ["bench-t1-000000", "bench-t1-000001", "bench-t1-000002"]
    assert b"channel_id=C0BENCH001" in reqs[1].body
    assert len({r.body for r in reqs}) == 3
    refused = payloads.send_command(
        "t1",
        0,
        secret="s",
        timestamp=now,
        team_id="T",
        channel_id="C",
        user_id="U",
        response_url="u",
        option="--dry-run",
    )
    assert b"--dry-run" in refused.body


def test_wire_format_is_what_the_lua_script_reads(tmp_path: Path) -> None:
    """The requests file is `<length>\\n<raw HTTP request>` repeated; each request is complete HTTP/1.1."""
    reqs = payloads.send_commands(
        "t2", 2, secret="s", timestamp=1, team_id="T", channels=["C"], user_id="U", response_url="u"
    )
    path = tmp_path / "requests.bin"
    write_requests(path, reqs, "http://127.0.0.1:8080/slack/events")
    data = path.read_bytes()
    for req in reqs:
        header, _, data = data.partition(b"\n")
        raw, data = data[: int(header)], data[int(header) :]
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
        assert f"Content-Length: {len(req.body)}".encode() in head
        assert body == req.body
    assert data == b""
    assert "wrk.thread:stop()" in LUA_SCRIPT and "function delay()" in LUA_SCRIPT


def test_wrk_report_is_parsed() -> None:
    """The script's BENCH-JSON line becomes a LoadResult with per-request send times."""
    report = {
        "latency_us": {
            "min": 900,
            "max": 4000,
            "mean": 1500.0,
            "p50": 1200,
            "p90": 2000,
            "p95": 2500,
            "p99": 3900,
            "p99.9": 4000,
        },
        "requests": 3,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
        "threads": [
            {
                "first": 100.0,
                "last": 101.5,
                "received": 3,
                "statuses": {"200": 3},
                "sent": [[0, 100.0], [2, 100.5], [1, 100.2]],
            }
        ],
    }
    result = parse_wrk_output("Running 1s test\nBENCH-JSON " + json.dumps(report) + "\n", 3, 2)
    assert result.completed == 3 and result.ok == 3
    assert result.requests_per_second == 2.0
    assert result.latency_ms["p99"] == 3.9
    assert result.sent_at == {0: 100.0, 1: 100.2, 2: 100.5}
    with pytest.raises(ValueError):
        parse_wrk_output("no report here", 3, 2)


def test_loads_side_by_side_merge_into_one_result() -> None:
    """Counts and statuses add up, the period spans both, latency percentiles are the worse part's."""
    from benchmarks.load import LoadResult, merged

    one = LoadResult("wrk", 10, 25, completed=10, started=1.0, finished=3.0, statuses={200: 10})
    one.latency_ms = {"count": 10, "mean": 2.0, "p99": 9.0}
    two = LoadResult("wrk", 10, 25, completed=10, started=1.5, finished=4.0, statuses={200: 9, 503: 1})
    two.latency_ms = {"count": 10, "mean": 4.0, "p99": 7.0}
    both = merged([one, two], 50)
    assert (both.planned, both.completed, both.concurrency) == (20, 20, 50)
    assert both.statuses == {200: 19, 503: 1}
    assert (both.started, both.finished, both.requests_per_second) == (1.0, 4.0, 6.7)
    assert both.latency_ms == {"count": 20, "mean": 3.0, "p99": 9.0}


def test_engine_flags_choose_the_side_by_side_run() -> None:
    """`--engine postgres --replicas 2` selects the engines comparison; replicas out of range are refused."""
    from benchmarks.__main__ import parse

    options = parse(["--engine", "postgres", "--replicas", "2", "--database-url", "postgresql:///x"])
    assert (options.engine, options.replicas, options.database_url) == ("postgres", 2, "postgresql:///x")
    assert parse([]).engine is None
    with pytest.raises(SystemExit):
        parse(["--engine", "postgres", "--replicas", "0"])


def test_the_live_status_plan_sends_four_reports_per_message_one_out_of_order_or_twice() -> None:
    """Each message gets queued, sent, delivered and one duplicate or late report, in bursts or waves."""
    from benchmarks.live_status import callback_plan

    sids = [f"SM{i:032x}" for i in range(6)]
    for bursts in (True, False):
        plan = callback_plan(sids, bursts=bursts)
        assert len(plan) == 4 * len(sids)
        for sid in sids:
            statuses = [status for s, status in plan if s == sid]
            assert sorted(set(statuses)) == ["delivered", "queued", "sent"]
            assert len(statuses) == 4
    assert [s for s, _ in callback_plan(sids)[:4]] == [sids[0]] * 4


def test_the_live_status_check_finds_close_updates_and_cards_left_behind() -> None:
    """Gaps are per card; a card whose text is not delivered counts as not final."""
    from benchmarks.live_status import check_updates

    updates = [["1.1", 10.0, True], ["1.1", 12.5, True], ["2.2", 11.0, True], ["2.2", 11.5, True]]
    messages = [
        ["1.1", ["bench-live-000000"], "Message sent to +1: delivered (SM1)"],
        ["2.2", ["bench-live-000001"], "Message sent to +1: sent (SM2)"],
    ]
    tokens = {"bench-live-000000": "SM1", "bench-live-000001": "SM2"}
    found = check_updates(updates, messages, tokens)
    assert found["min_gap_s"] == 0.5
    assert found["cards_not_final"] == 1
    assert found["max_updates_per_card"] == 2


def test_the_conversation_check_finds_missing_and_reordered_texts() -> None:
    """Each phone's thread must hold its texts once and in order; a swap or a loss is reported."""
    from benchmarks.conversations import _check_threads, _phone

    def messages(order: list[list[str]]) -> list[list[object]]:
        out: list[list[object]] = []
        for phone, bodies in enumerate(order):
            root = f"1.{phone:03d}"
            out.append([root, None, f"Texts from {_phone(phone)}"])
            out += [[f"2.{phone:03d}{k:03d}", root, body] for k, body in enumerate(bodies)]
        return out

    good = [["p0-0000", "p0-0001"], ["p1-0000", "p1-0001"]]
    assert _check_threads(messages(good), texts=4, numbers=2)[0]
    swapped = [["p0-0001", "p0-0000"], ["p1-0000", "p1-0001"]]
    assert not _check_threads(messages(swapped), texts=4, numbers=2)[0]
    lost = [["p0-0000"], ["p1-0000", "p1-0001"]]
    assert not _check_threads(messages(lost), texts=4, numbers=2)[0]


def test_a_token_names_its_run() -> None:
    """The run label comes back out of a token, so cards can be counted per run."""
    assert payloads.run_of(payloads.token("split50", 7)) == "split50"
    assert payloads.run_of(payloads.token("a1", 123456)) == "a1"
