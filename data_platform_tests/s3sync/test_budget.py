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


def test_reservations_stay_within_the_limit() -> None:
    assert peak_in_use(ByteBudget(100), [40] * 8) <= 80


def test_oversized_reservation_runs_alone() -> None:
    assert peak_in_use(ByteBudget(100), [250, 250, 250]) == 250
