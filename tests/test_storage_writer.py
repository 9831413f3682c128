"""The SQLite writer thread: one job at a time, in order, with urgent jobs first."""

from __future__ import annotations

import threading

import pytest

from storage.writer import Writer


def test_an_urgent_job_overtakes_the_queue_but_not_the_running_job() -> None:
    """Queued behind a running job, urgent work runs before normal work submitted earlier."""
    writer = Writer()
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        started.set()
        release.wait(5)
        order.append("running")

    running = writer.submit(first)
    assert started.wait(5)
    normal = [writer.submit(lambda n=n: order.append(f"normal{n}")) for n in range(3)]
    urgent = writer.submit(lambda: order.append("urgent"), urgent=True)
    release.set()
    for future in (running, *normal, urgent):
        future.result(5)
    assert order == ["running", "urgent", "normal0", "normal1", "normal2"]
    writer.shutdown()


def test_a_failing_job_hands_its_error_back_and_the_thread_goes_on() -> None:
    """An exception reaches the submitter; the next job still runs."""
    writer = Writer()
    with pytest.raises(ZeroDivisionError):
        writer.submit(lambda: 1 / 0).result(5)
    assert writer.submit(lambda: "still here").result(5) == "still here"
    writer.shutdown()


def test_shutdown_runs_what_was_queued_and_refuses_more() -> None:
    """Jobs queued before shutdown run; a submit after it is refused."""
    writer = Writer()
    queued = writer.submit(lambda: "queued")
    writer.shutdown()
    assert queued.result(5) == "queued"
    with pytest.raises(RuntimeError, match="shut down"):
        writer.submit(lambda: None)
