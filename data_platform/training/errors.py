"""The training store's errors: one line saying what is wrong and what to do."""

from __future__ import annotations


class TrainingError(ValueError):
    """Bad input or a bad stored file; the message names the file and line when there is one."""


class PiiError(TrainingError):
    """Strict mode refused a sample; the message names PII kinds and JSON paths, never values."""

    def __init__(self, findings: list[tuple[str, str]]) -> None:
        self.findings = findings  # (JSON path, kind)
        kinds = sorted({kind for _, kind in findings})
        paths = ", ".join(f"{path} ({kind})" for path, kind in findings)
        super().__init__(
            f"sample refused: it contains PII ({', '.join(kinds)}) at {paths}; "
            "remove it or write without strict mode to mask it"
        )
