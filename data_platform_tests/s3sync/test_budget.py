from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from data_platform.s3sync.budget import ByteBudget


def peak_in_use(budget: ByteBudget, sizes: list[int]) -> int:
    peak = 0
    lock = threading.Lock()

    def hold(size: int) -> None:
        nonlocal peak
        with budget.reserve(size):
            with lock:
                peak = max(peak, budget.in_use)
            time.sleep(0.01)

    with ThreadPoolExecutor(len(sizes)) as pool:
        list(pool.map(hold, sizes))
    assert budget.in_use == 0
    return peak


def test_reservations_that_fit_together_are_held_at_once() -> None:
    budget = ByteBudget(100)
    both_inside = threading.Barrier(2, timeout=10)  # broken if the budget lets only one in

    def hold() -> None:
        with budget.reserve(40):
            both_inside.wait()

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(hold) for _ in range(2)]:
            future.result()
    assert budget.in_use == 0


def test_reservations_stay_within_the_limit() -> None:
    assert peak_in_use(ByteBudget(100), [40] * 8) <= 80


def test_oversized_reservation_runs_alone() -> None:
    assert peak_in_use(ByteBudget(100), [250, 250, 250]) == 250
