"""The discovery cursor and where it lives between sensor ticks.

Two parts with different sizes and rhythms:

* the *position* (resume points of the frontier and the sweep): a few hundred bytes that change
  every tick. It goes into Dagster's own sensor cursor, readable JSON.
* the *memory* (one fingerprint per known partition, hashes of layout problems already
  reported): ~10 bytes per partition compressed, so 25,000 partitions are ~300 kB. Dagster copies
  the sensor cursor into every tick record (kept for days, successful ticks for good), so the
  memory goes into the instance's key-value store instead, written only when it changed.

A tick must not lose its changes if it fails after writing: the memory alternates between two
slots, the cursor names the slot (and the hash) it belongs to, and a tick always writes the slot
the current cursor does *not* name. A failed tick leaves the cursor, and so its slot, untouched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

MEMORY_FORMAT = "silver-discovery-memory-v1:"
POINTER_FORMAT = "silver-discovery-pointer-v1:"
MAX_REPORTED = 1000
RESET_HINT = "reset the sensor's cursor to start discovery over"

Resume = tuple[str, str | None]  # (listing prefix, StartAfter) to continue from


class CursorValues(Protocol):
    """A key-value store; Dagster's `instance.daemon_cursor_storage` is one."""

    def get_cursor_values(self, keys: set[str]) -> Mapping[str, str]: ...

    def set_cursor_values(self, pairs: Mapping[str, str]) -> None: ...


@dataclass
class DiscoveryCursor:
    """Fingerprints per dataset and partition path, resume points, reported problems."""

    fingerprints: dict[str, dict[str, str]] = field(default_factory=dict)
    frontier_resume: dict[str, Resume] = field(default_factory=dict)
    sweep_dataset: str | None = None
    sweep_resume: Resume | None = None
    sweeps_completed: int = 0
    reported: list[str] = field(default_factory=list)  # hashes of layout problems already told

    def position(self) -> dict[str, Any]:
        return {
            "frontier_resume": self.frontier_resume,
            "sweep_dataset": self.sweep_dataset,
            "sweep_resume": self.sweep_resume,
            "sweeps_completed": self.sweeps_completed,
        }

    def memory(self) -> str:
        """Fingerprints grouped by month (paths then compress to almost nothing) + reported."""
        grouped: dict[str, dict[str, dict[str, str]]] = {}
        for dataset, known in self.fingerprints.items():
            months = grouped.setdefault(dataset, {})
            for path, fingerprint in known.items():
                year, month, area = path.split("/", 2)  # year=YYYY/month=MM/region=R/sigungu=S
                months.setdefault(f"{year}/{month}", {})[area] = fingerprint
        return _pack(MEMORY_FORMAT, {"fingerprints": grouped, "reported": self.reported})

    @classmethod
    def from_parts(cls, position: Mapping[str, Any], memory: str) -> DiscoveryCursor:
        try:
            stored = _unpack(MEMORY_FORMAT, memory)
            sweep = position["sweep_resume"]
            return cls(
                fingerprints={
                    dataset: {
                        f"{month}/{rest}": fp
                        for month, parts in months.items()
                        for rest, fp in parts.items()
                    }
                    for dataset, months in stored["fingerprints"].items()
                },
                frontier_resume={ds: (p, a) for ds, (p, a) in position["frontier_resume"].items()},
                sweep_dataset=position["sweep_dataset"],
                sweep_resume=(sweep[0], sweep[1]) if sweep else None,
                sweeps_completed=int(position["sweeps_completed"]),
                reported=[str(h) for h in stored["reported"]],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"sensor cursor is corrupt ({exc!r}); {RESET_HINT}") from exc

    def remember_reported(self, identities: Sequence[str]) -> set[str]:
        """Which identities were not reported before; remembers the last MAX_REPORTED, so a
        broken key is told once, not every tick."""
        known = set(self.reported)
        fresh = [i for i in dict.fromkeys(identities) if _short_hash(i) not in known]
        self.reported = (self.reported + [_short_hash(i) for i in fresh])[-MAX_REPORTED:]
        return set(fresh)

    def copy(self) -> DiscoveryCursor:
        return DiscoveryCursor(
            fingerprints={ds: dict(parts) for ds, parts in self.fingerprints.items()},
            frontier_resume=dict(self.frontier_resume),
            sweep_dataset=self.sweep_dataset,
            sweep_resume=self.sweep_resume,
            sweeps_completed=self.sweeps_completed,
            reported=list(self.reported),
        )


def load_cursor(pointer: str | None, values: CursorValues, namespace: str) -> DiscoveryCursor:
    """The cursor a sensor's own cursor text (`pointer`) points to."""
    if not pointer:
        return DiscoveryCursor()
    state = _read_pointer(pointer)
    if state["slot"] is None:
        return DiscoveryCursor.from_parts(state["position"], DiscoveryCursor().memory())
    key = _slot_key(namespace, state["slot"])
    memory = values.get_cursor_values({key}).get(key)
    if memory is None or _short_hash(memory) != state["memory_hash"]:
        raise ValueError(
            f"the sensor's stored state {key!r} is missing or does not match its cursor "
            f"(was the instance's key-value store cleared?); {RESET_HINT}"
        )
    return DiscoveryCursor.from_parts(state["position"], memory)


def store_cursor(
    cursor: DiscoveryCursor, pointer: str | None, values: CursorValues, namespace: str
) -> str:
    """Save the memory if it changed (into the slot `pointer` does not name); returns the new
    cursor text for the sensor."""
    state = _read_pointer(pointer) if pointer else {"slot": None, "memory_hash": None}
    memory = cursor.memory()
    slot, memory_hash = state["slot"], _short_hash(memory)
    if memory_hash != state["memory_hash"]:
        slot = "b" if slot == "a" else "a"
        values.set_cursor_values({_slot_key(namespace, slot): memory})
    pointer_state = {"position": cursor.position(), "slot": slot, "memory_hash": memory_hash}
    return POINTER_FORMAT + json.dumps(pointer_state, ensure_ascii=False, sort_keys=True)


def _read_pointer(pointer: str) -> dict[str, Any]:
    if not pointer.startswith(POINTER_FORMAT):
        raise ValueError(f"sensor cursor is not a {POINTER_FORMAT!r} cursor; {RESET_HINT}")
    try:
        state = json.loads(pointer[len(POINTER_FORMAT) :])
        if state["slot"] not in (None, "a", "b") or "position" not in state:
            raise ValueError(f"unknown slot {state['slot']!r}")
        return state
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"sensor cursor is corrupt ({exc!r}); {RESET_HINT}") from exc


def _slot_key(namespace: str, slot: str) -> str:
    return f"data_platform/silver/discovery/{namespace}/{slot}"


def _short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _pack(prefix: str, state: Any) -> str:
    raw = json.dumps(state, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return prefix + base64.b64encode(zlib.compress(raw.encode("utf-8"), 9)).decode("ascii")


def _unpack(prefix: str, text: str) -> Any:
    if not text.startswith(prefix):
        raise ValueError(f"sensor state is not a {prefix!r} text; {RESET_HINT}")
    try:
        raw = zlib.decompress(base64.b64decode(text[len(prefix) :], validate=True))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"sensor state is corrupt ({exc!r}); {RESET_HINT}") from exc
