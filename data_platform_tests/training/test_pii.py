"""The PII corpus: every positive found with its kind, every negative left untouched."""

from __future__ import annotations

import pytest

from data_platform.training import LocalStorageBackend, PiiError
from data_platform.training.pii import find_spans, mask, scan

POSITIVES = [
    ("연락처: hong.gildong@example.co.kr로 보내주세요", "EMAIL", "hong.gildong@example.co.kr"),
    ("메일 a_b+tag@mail.example.com", "EMAIL", "a_b+tag@mail.example.com"),
    ("휴대폰 010-1234-5678 입니다", "PHONE", "010-1234-5678"),
    ("휴대폰 01098765432", "PHONE", "01098765432"),
    ("서울 사무실 02-3456-7890", "PHONE", "02-3456-7890"),
    ("경기 031-123-4567 로 전화", "PHONE", "031-123-4567"),
    ("국제 +82 10-1234-5678", "PHONE", "+82 10-1234-5678"),
    ("US office +1 650-253-0000", "PHONE", "+1 650-253-0000"),
    ("London +44 20 7946 0958", "PHONE", "+44 20 7946 0958"),
    ("주민번호 971013-1019901 확인", "RRN", "971013-1019901"),  # check digit valid
    ("주민번호 900101-1234567", "RRN", "900101-1234567"),  # no valid check digit
    ("2021년생 210315-3456789", "RRN", "210315-3456789"),  # issued after 2020-10: no check digit
    ("카드 4111 1111 1111 1111 결제", "CARD", "4111 1111 1111 1111"),
    ("카드 5500-0000-0000-0004", "CARD", "5500-0000-0000-0004"),
    ("amex 378282246310005", "CARD", "378282246310005"),
    ("결제카드4242424242424242입니다", "CARD", "4242424242424242"),
]

NEGATIVES = [
    "주문번호 2024011512345 확인",
    "order ORD-20240115-0001",
    "주문 20240115-000123",
    "2024-01-15T10:30:00Z",
    "2024-01-15 10:30:00.123456+09:00",
    "가격 12,300원, 합계 1,234,567원",
    "price 1,234,567,890,123",
    "550e8400-e29b-41d4-a716-446655440000",
    "version 10.0.19045, v1.2.3, 3.14159265358979323",
    "epoch ms 1700000000000",
    "4111111111111112 is not Luhn-valid",
    "1234567890123",
    "991332-1234567 has no real birth date",
    "900101-9234567 has a century digit for the 1800s",
    "invoice 900101-1234567-A",
    "총 1234567 건, 123456789 bytes",
    "20240115",
    "a@b",
]


@pytest.mark.parametrize(("text", "kind", "value"), POSITIVES)
def test_positive_found_with_its_kind(text: str, kind: str, value: str) -> None:
    spans = find_spans(text)
    assert [(span.kind, text[span.start : span.end]) for span in spans] == [(kind, value)]
    masked, counts = mask(text)
    assert value not in masked and f"[{kind}]" in masked
    assert counts == {kind: 1}


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative_untouched(text: str) -> None:
    assert find_spans(text) == []
    assert mask(text) == (text, {})


def test_rrn_check_digit_raises_confidence_only() -> None:
    valid, no_check = find_spans("971013-1019901"), find_spans("900101-1234567")
    assert valid[0].confident and not no_check[0].confident


def test_scan_names_json_paths_and_masks_nested_values() -> None:
    sample = {
        "input": {"messages": [{"content": "전화 010-1234-5678"}], "amount": "12,300원"},
        "output": {"e-mail": "kim@example.com", "count": 4111111111111111},
    }
    found = sorted((f.path, f.kind) for f in scan(sample))
    assert found == [
        ("$.input.messages[0].content", "PHONE"),
        ("$.output['e-mail']", "EMAIL"),
    ]
    masked, counts = mask(sample)
    assert masked["input"]["messages"][0]["content"] == "전화 [PHONE]"
    assert masked["input"]["amount"] == "12,300원"
    assert masked["output"] == {"e-mail": "[EMAIL]", "count": 4111111111111111}  # numbers are data
    assert counts == {"PHONE": 1, "EMAIL": 1}


def test_masking_on_write_records_counts(tmp_path) -> None:
    backend = LocalStorageBackend(tmp_path)
    text = " 그리고 ".join(value for _, _, value in POSITIVES)
    path = backend.write_training_sample("chat", {"input": text, "output": "네"})
    stored = backend.read_sample(path)
    for _, _, value in POSITIVES:
        assert value not in stored["samples"][0]["input"]
    assert stored["metadata"]["pii-email"] == "2"
    assert stored["metadata"]["pii-phone"] == "7"
    assert stored["metadata"]["pii-rrn"] == "3"
    assert stored["metadata"]["pii-card"] == "4"
    negatives = {"input": list(NEGATIVES), "output": "ok"}
    clean = backend.read_sample(backend.write_training_sample("chat", negatives))
    assert clean["samples"][0]["input"] == NEGATIVES
    assert not any(name.startswith("pii-") for name in clean["metadata"])


def test_strict_mode_refuses_naming_kinds_and_paths_never_values(tmp_path) -> None:
    backend = LocalStorageBackend(tmp_path, strict=True)
    samples = [
        {"input": "fine", "output": "ok"},
        {"input": {"q": "주민번호 900101-1234567"}, "output": "메일 kim@example.com"},
    ]
    with pytest.raises(PiiError) as caught:
        backend.write_training_samples("chat", samples)
    message = str(caught.value)
    assert "$[1].input.q (RRN)" in message and "$[1].output (EMAIL)" in message
    assert "900101" not in message and "kim@" not in message
    assert backend.list_samples("chat") == []
    assert backend.write_training_samples("chat", [{"input": NEGATIVES, "output": "x"}])


INTERNATIONAL_EMAILS = [
    ("연락처 홍길동@예시.한국 입니다", "홍길동@예시.한국"),
    ("메일: 홍길동@example.com 으로", "홍길동@example.com"),
    ("write to jörg@bücher.de today", "jörg@bücher.de"),
    ("punycode kim@xn--9n2bp8q.xn--3e0b707e", "kim@xn--9n2bp8q.xn--3e0b707e"),
    ("kim@example.com로 보내세요", "kim@example.com"),  # the particle stays outside
]


@pytest.mark.parametrize(("text", "value"), INTERNATIONAL_EMAILS)
def test_internationalised_email_is_masked_and_refused_in_strict_mode(
    tmp_path, text: str, value: str
) -> None:
    assert [(s.kind, text[s.start : s.end]) for s in find_spans(text)] == [("EMAIL", value)]
    stored = LocalStorageBackend(tmp_path / "mask").write_training_sample(
        "chat", {"input": text, "output": "네"}
    )
    masked = LocalStorageBackend(tmp_path / "mask").read_sample(stored)["samples"][0]["input"]
    assert masked == text.replace(value, "[EMAIL]")
    with pytest.raises(PiiError, match=r"\$\.input \(EMAIL\)"):
        LocalStorageBackend(tmp_path / "strict", strict=True).write_training_sample(
            "chat", {"input": text, "output": "네"}
        )


def test_pii_in_a_json_key_is_masked_by_renaming_the_key() -> None:
    sample = {
        "input": {"010-2345-6789": "김철수", "[PHONE]": "already a tag", "note": "fine"},
        "output": {"kim@example.com": {"주소": "x"}},
    }
    found = sorted((f.path, f.kind) for f in scan(sample))
    assert found == [
        ("$.input['[PHONE]'] (key)", "PHONE"),
        ("$.output['[EMAIL]'] (key)", "EMAIL"),
    ]
    masked, counts = mask(sample)
    assert masked == {
        "input": {"[PHONE]": "김철수", "[PHONE]#2": "already a tag", "note": "fine"},
        "output": {"[EMAIL]": {"주소": "x"}},
    }
    assert counts == {"PHONE": 1, "EMAIL": 1}


def test_strict_mode_refuses_pii_in_a_key_without_naming_it(tmp_path) -> None:
    backend = LocalStorageBackend(tmp_path, strict=True)
    with pytest.raises(PiiError) as caught:
        backend.write_training_sample("chat", {"input": {"010-2345-6789": "김"}, "output": "x"})
    message = str(caught.value)
    assert "$.input['[PHONE]'] (key) (PHONE)" in message and "2345" not in message
    assert backend.list_samples("chat") == []
