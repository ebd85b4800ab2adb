"""The S3 XML answers `core.s3http` reads, as the dicts boto3 returns (same key names)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree


def _name(element: ElementTree.Element) -> str:
    return element.tag.rpartition("}")[2]  # drop the S3 namespace


def _fields(element: ElementTree.Element) -> dict[str, str]:
    return {_name(child): child.text or "" for child in element}


def text_of(data: bytes, tag: str) -> str | None:
    """The text of the first `tag` element anywhere in `data` (None: absent or not XML)."""
    if not data.lstrip().startswith(b"<"):
        return None
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if _name(element) == tag:
            return element.text or ""
    return None


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _page(data: bytes, url_encoded: bool) -> tuple[dict[str, Any], list[ElementTree.Element]]:
    """Top-level scalar fields and the repeated elements."""
    root = ElementTree.fromstring(data)
    page: dict[str, Any] = {}
    items = []
    for child in root:
        if len(child):
            items.append(child)
        else:
            page[_name(child)] = child.text or ""
    for name in ("Prefix", "StartAfter") if url_encoded else ():
        if name in page:
            page[name] = unquote_plus(page[name])
    page["IsTruncated"] = page.get("IsTruncated") == "true"
    return page, items


def _entries(
    items: list[ElementTree.Element], tag: str, convert: Callable[[dict[str, str]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """The `tag` children of a page, each converted from its text fields."""
    return [convert(_fields(item)) for item in items if _name(item) == tag]


def objects_page(data: bytes) -> dict[str, Any]:
    """One ListObjectsV2 page asked with encoding-type=url (keys that XML cannot carry arrive
    intact): Contents (Key, Size, ETag, LastModified), IsTruncated, NextContinuationToken."""
    page, items = _page(data, url_encoded=True)
    contents = _entries(
        items,
        "Contents",
        lambda fields: {
            "Key": unquote_plus(fields["Key"]),
            "Size": int(fields.get("Size", 0)),
            "ETag": fields.get("ETag", ""),
            "LastModified": _timestamp(fields["LastModified"]),
        },
    )
    if contents:
        page["Contents"] = contents
    return page


def multipart_uploads_page(data: bytes) -> dict[str, Any]:
    """One ListMultipartUploads page: Uploads (Key, UploadId, Initiated), IsTruncated, markers."""
    page, items = _page(data, url_encoded=False)
    uploads = _entries(
        items,
        "Upload",
        lambda fields: {
            "Key": fields["Key"],
            "UploadId": fields["UploadId"],
            "Initiated": _timestamp(fields["Initiated"]),
        },
    )
    if uploads:
        page["Uploads"] = uploads
    return page
