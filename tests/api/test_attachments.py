"""Conversation attachments: upload (type allow-list, content sniffing, size limit, content-addressed
storage, one transaction with the message) and the participant-only download."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.conversations.attachments import clean_name
from api.main import create_app
from tests.helpers import Actor, Api, data, error

URL = "/api/conversations"

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256))
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(64)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
TEXT = "Invoice #42 — paid in ₿, thanks ✓\n".encode()
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)


def upload(
    api: Api,
    user: Actor | None,
    conv_id: int,
    content: bytes,
    *,
    name: str = "photo.png",
    content_type: str = "image/png",
    caption: str | None = None,
) -> httpx.Response:
    resp: httpx.Response = api.client.post(
        f"{URL}/{conv_id}/attachments",
        files={"file": (name, content, content_type)},
        data={"caption": caption} if caption is not None else None,
        headers=user.headers if user else None,
    )
    return resp


def stored_files(root: Path) -> list[Path]:
    """Files under the attachments directory, temporary uploads included."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def unread(api: Api, user: Actor, conv_id: int) -> int:
    count: int = data(api.client.get(f"{URL}/{conv_id}", headers=user.headers))["unreadCount"]
    return count


@pytest.fixture
def root(settings) -> Path:
    path: Path = settings.attachments_dir
    return path


@pytest.fixture
def chat(api):
    """A seller with a shop and a buyer who opened a conversation with it."""
    seller, buyer = api.user(), api.user()
    shop = api.shop(seller)
    conv = data(api.client.post(URL, json={"shopId": shop["id"]}, headers=buyer.headers), 201)
    return seller, buyer, shop, conv


def assert_nothing_stored(api: Api, root: Path) -> None:
    assert api.count("attachments") == 0
    assert api.count("messages") == 0
    assert api.events("attachment.uploaded") == [] and api.events("message.sent") == []
    assert stored_files(root) == []  # not even a temporary file


def test_png_upload_posts_a_message_with_the_file(api, chat, root):
    seller, buyer, shop, conv = chat
    out = data(upload(api, buyer, conv["id"], PNG, name="wallet.png", caption="  Is this the one? "), 201)
    sha = hashlib.sha256(PNG).hexdigest()
    att, msg = out["attachment"], out["message"]
    assert att["sha256"] == sha and att["sizeBytes"] == len(PNG) and att["contentType"] == "image/png"
    assert att["originalName"] == "wallet.png" and att["uploaderId"] == buyer.id
    assert att["conversationId"] == conv["id"] and att["messageId"] == msg["id"]
    assert att["url"] == f"/api/attachments/{att['id']}"
    assert msg["messageType"] == "image" and msg["attachmentUrl"] == att["url"]
    assert msg["body"] == "Is this the one?" and msg["senderId"] == buyer.id
    # On disk under its hash, complete, and no temporary file left behind.
    assert stored_files(root) == [root / sha[:2] / sha]
    assert (root / sha[:2] / sha).read_bytes() == PNG
    # The message is in the conversation, the seller's counter and notifications moved.
    messages = data(api.client.get(f"{URL}/{conv['id']}/messages", headers=seller.headers))
    assert [(m["id"], m["attachmentUrl"]) for m in messages] == [(msg["id"], att["url"])]
    assert unread(api, seller, conv["id"]) == 1 and unread(api, buyer, conv["id"]) == 0
    assert data(api.client.get(f"{URL}/{conv['id']}", headers=seller.headers))["lastMessage"] == (
        "Is this the one?"
    )
    notes = data(api.client.get("/api/notifications", headers=seller.headers))
    assert [(n["type"], n["data"]["messageId"]) for n in notes] == [("new_message", msg["id"])]
    # The events: the message (with the attachment's facts) and the upload itself.
    [sent] = api.events("message.sent")
    assert sent.entity_id == msg["id"] and sent.payload["messageType"] == "image"
    assert sent.payload["attachmentId"] == att["id"] and sent.payload["size"] == len(PNG)
    assert sent.payload["contentType"] == "image/png"
    [ev] = api.events("attachment.uploaded")
    assert ev.entity_type == "attachment" and ev.entity_id == att["id"] and ev.actor_user_id == buyer.id
    assert ev.shop_id == shop["id"]
    assert ev.payload == {
        "conversationId": conv["id"],
        "messageId": msg["id"],
        "uploaderId": buyer.id,
        "sha256": sha,
        "contentType": "image/png",
        "sizeBytes": len(PNG),
        "deduplicated": False,
    }


@pytest.mark.parametrize(
    ("content", "content_type", "name", "message_type"),
    [
        (PDF, "application/pdf", "invoice.pdf", "file"),
        (TEXT, "text/plain", "notes.txt", "file"),
        (JPEG, "image/jpeg", "a.jpg", "image"),
        (GIF, "image/gif", "a.gif", "image"),
        (WEBP, "image/webp", "a.webp", "image"),
    ],
)
def test_other_allowed_types(api, chat, root, content, content_type, name, message_type):
    seller, buyer, _, conv = chat
    out = data(upload(api, seller, conv["id"], content, name=name, content_type=content_type), 201)
    assert out["message"]["messageType"] == message_type and out["message"]["body"] == ""
    assert out["attachment"]["contentType"] == content_type
    sha = hashlib.sha256(content).hexdigest()
    assert (root / sha[:2] / sha).read_bytes() == content
    conv_now = data(api.client.get(f"{URL}/{conv['id']}", headers=buyer.headers))
    assert conv_now["lastMessage"] == f"[{message_type}]" and conv_now["unreadCount"] == 1
    resp = api.client.get(out["attachment"]["url"], headers=buyer.headers)
    assert resp.status_code == 200 and resp.content == content
    assert resp.headers["content-type"].split(";")[0] == content_type
    disposition = "inline" if message_type == "image" else "attachment"
    assert resp.headers["content-disposition"] == f'{disposition}; filename="{name}"'


def test_download_by_participants_and_admins_only(api, chat):
    seller, buyer, _, conv = chat
    att = data(upload(api, buyer, conv["id"], PNG), 201)["attachment"]
    url = att["url"]
    bodies = []
    for who in (buyer, seller, api.user("admin")):
        resp = api.client.get(url, headers=who.headers)
        assert resp.status_code == 200, resp.text
        bodies.append(resp.content)
        assert resp.headers["content-type"] == "image/png"
        assert resp.headers["content-disposition"].startswith("inline")
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"].startswith("private")
        assert resp.headers["etag"] == f'"{att["sha256"]}"'
    assert bodies == [PNG, PNG, PNG]
    # Revalidation: an unchanged file is a 304 without a body.
    again = api.client.get(url, headers={**seller.headers, "If-None-Match": f'"{att["sha256"]}"'})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == f'"{att["sha256"]}"'
    other = api.client.get(url, headers={**seller.headers, "If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == PNG
    # Anyone else: the attachment does not exist for them.
    err = error(api.client.get(url, headers=api.user().headers), 404, "NOT_FOUND")
    assert "Conversation" not in err["message"]
    error(api.client.get(url), 401, "UNAUTHORIZED")
    error(api.client.get("/api/attachments/999999", headers=buyer.headers), 404, "NOT_FOUND")


def test_only_participants_upload(api, chat, root):
    _, buyer, _, conv = chat
    error(upload(api, api.user(), conv["id"], PNG), 404, "NOT_FOUND")
    error(upload(api, None, conv["id"], PNG), 401, "UNAUTHORIZED")
    error(upload(api, api.user("admin"), conv["id"], PNG), 403, "FORBIDDEN")  # may read, not post
    error(upload(api, buyer, 999999, PNG), 404, "NOT_FOUND")
    assert_nothing_stored(api, root)


def test_disallowed_type_is_415(api, chat, root):
    _, buyer, _, conv = chat
    err = error(
        upload(api, buyer, conv["id"], EXE, name="setup.exe", content_type="application/x-msdownload"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    assert err["details"]["contentType"] == "application/x-msdownload"
    assert "image/png" in err["details"]["allowed"]
    error(upload(api, buyer, conv["id"], b"<svg/>", name="x.svg", content_type="image/svg+xml"), 415)
    # Not multipart at all.
    error(
        api.client.post(f"{URL}/{conv['id']}/attachments", json={"file": "x"}, headers=buyer.headers),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    assert_nothing_stored(api, root)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (EXE, "image/png"),  # an executable that says it is a picture
        (PNG, "image/jpeg"),  # a real picture of another type
        (EXE, "application/pdf"),
        (PNG, "text/plain"),  # not UTF-8
        (b"plain text\x00with a NUL", "text/plain"),
        (b"GIF8", "image/gif"),  # shorter than its signature
    ],
)
def test_content_that_contradicts_its_type_is_refused(api, chat, root, content, content_type):
    _, buyer, _, conv = chat
    err = error(
        upload(api, buyer, conv["id"], content, content_type=content_type), 422, "CONTENT_TYPE_MISMATCH"
    )
    assert err["details"][0]["field"] == "file"
    assert_nothing_stored(api, root)


def test_malformed_forms_are_422(api, chat, root):
    _, buyer, _, conv = chat
    post = f"{URL}/{conv['id']}/attachments"
    no_file = api.client.post(
        post, data={"caption": "hi"}, files={"other": ("a", b"b")}, headers=buyer.headers
    )
    assert error(no_file, 422, "VALIDATION_ERROR")["details"][0]["field"] == "other"
    only_caption = api.client.post(
        post,
        files={"caption": (None, b"hi")},
        headers=buyer.headers,
    )
    assert error(only_caption, 422, "VALIDATION_ERROR")["details"][0]["field"] == "file"
    two = api.client.post(
        post,
        files=[("file", ("a.png", PNG, "image/png")), ("file", ("b.png", PNG, "image/png"))],
        headers=buyer.headers,
    )
    error(two, 422, "VALIDATION_ERROR")
    error(upload(api, buyer, conv["id"], b""), 422, "VALIDATION_ERROR")
    error(upload(api, buyer, conv["id"], PNG, caption="x" * 4001), 422, "VALIDATION_ERROR")
    assert_nothing_stored(api, root)


def test_identical_uploads_share_one_file(api, chat, root):
    seller, buyer, _, conv = chat
    first = data(upload(api, buyer, conv["id"], PNG, name="one.png"), 201)["attachment"]
    second = data(upload(api, seller, conv["id"], PNG, name="two.png"), 201)["attachment"]
    assert first["id"] != second["id"] and first["messageId"] != second["messageId"]
    assert first["sha256"] == second["sha256"]
    assert stored_files(root) == [root / first["sha256"][:2] / first["sha256"]]
    assert [e.payload["deduplicated"] for e in api.events("attachment.uploaded")] == [False, True]
    # Each keeps its own name.
    names = [
        api.client.get(a["url"], headers=buyer.headers).headers["content-disposition"]
        for a in (first, second)
    ]
    assert names == ['inline; filename="one.png"', 'inline; filename="two.png"']
    assert api.count("attachments") == 2 and api.count("messages") == 2


def test_blocked_sender_is_403(api, chat, root):
    seller, buyer, _, conv = chat
    data(api.client.post(f"{URL}/{conv['id']}/block", headers=seller.headers))
    error(upload(api, buyer, conv["id"], PNG), 403, "BLOCKED")
    assert api.count("attachments") == 0 and api.count("messages") == 0
    assert stored_files(root) == []
    # The blocker can still send files.
    data(upload(api, seller, conv["id"], PDF, name="a.pdf", content_type="application/pdf"), 201)


def test_stored_name_is_sanitised(api, chat):
    _, buyer, _, conv = chat
    # Written by hand: HTTP clients escape a quote in a file name, a hostile one need not.
    raw_name = '../../etc/pa"ss\u202ewd.txt'.encode()
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + raw_name + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + TEXT + b"\r\n--XyZ--\r\n"
    )
    resp = api.client.post(
        f"{URL}/{conv['id']}/attachments",
        content=body,
        headers={**buyer.headers, "Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    att = data(resp, 201)["attachment"]
    assert att["originalName"] == "passwd.txt"
    resp = api.client.get(att["url"], headers=buyer.headers)
    assert resp.headers["content-disposition"] == 'attachment; filename="passwd.txt"'
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.content == TEXT


def test_clean_name():
    assert clean_name("C:\\Users\\me\\photo.PNG", "image/png") == "photo.PNG"
    assert clean_name("  ..hidden  ", "image/png") == "hidden"
    assert clean_name("a\r\nb;c<d>.txt", "text/plain") == "abcd.txt"
    assert clean_name("", "application/pdf") == "attachment.pdf"
    assert clean_name("../", "image/jpeg") == "attachment.jpg"
    long = clean_name("x" * 500 + ".pdf", "application/pdf")
    assert len(long) == 200 and long.endswith(".pdf")


def test_attachment_route_takes_more_than_the_general_body_limit(api, chat, settings, root):
    seller, buyer, _, conv = chat
    big = PNG + bytes(3 * settings.max_body_bytes)  # well above 1 MiB, well below 10 MiB
    att = data(upload(api, buyer, conv["id"], big), 201)["attachment"]
    assert att["sizeBytes"] == len(big)
    assert api.client.get(att["url"], headers=seller.headers).content == big
    # Exactly the limit is fine; one byte more is not.
    limit = settings.attachment_max_bytes
    data(upload(api, buyer, conv["id"], PNG + bytes(limit - len(PNG))), 201)
    err = error(upload(api, buyer, conv["id"], PNG + bytes(limit - len(PNG) + 1)), 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["limitBytes"] == limit
    # Every other route keeps the general limit, this one included for other methods.
    body = {"body": "x" * (settings.max_body_bytes + 1)}
    err = error(api.client.post(f"{URL}/{conv['id']}/messages", json=body, headers=buyer.headers), 413)
    assert err["details"]["limitBytes"] == settings.max_body_bytes
    assert api.count("attachments") == 2
    assert len(stored_files(root)) == 2


@pytest.fixture
def small(settings, clock, store) -> Iterator[tuple[Api, Path]]:
    """The app with a 2 KiB attachment limit."""
    app = create_app(settings.model_copy(update={"attachment_max_bytes": 2048}), clock=clock, store=store)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store, clock), settings.attachments_dir


def test_oversize_upload_is_413(small):
    api, root = small
    seller, buyer = api.user(), api.user()
    shop = api.shop(seller)
    conv = data(api.client.post(URL, json={"shopId": shop["id"]}, headers=buyer.headers), 201)
    err = error(upload(api, buyer, conv["id"], PNG + bytes(2048)), 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["limitBytes"] == 2048
    assert_nothing_stored(api, root)
    # A body far past the limit is refused by its declared length, before it is read.
    huge = PNG + bytes(200_000)
    err = error(upload(api, buyer, conv["id"], huge), 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["limitBytes"] < len(huge)
    assert_nothing_stored(api, root)
    data(upload(api, buyer, conv["id"], PNG[:2048]), 201)


def test_upload_and_download_over_real_http(api, chat, server_url, root):
    """Through uvicorn: the body arrives in many chunks and the file streams back."""
    seller, buyer, _, conv = chat
    big = PNG + hashlib.sha256(b"seed").digest() * 100_000  # ~3.2 MB
    with httpx.Client(base_url=server_url, timeout=30) as http:
        resp = http.post(
            f"{URL}/{conv['id']}/attachments",
            files={"file": ("big.png", big, "image/png")},
            data={"caption": "full size"},
            headers=buyer.headers,
        )
        att = data(resp, 201)["attachment"]
        got = http.get(att["url"], headers=seller.headers)
        assert got.status_code == 200 and got.content == big
        assert got.headers["content-length"] == str(len(big))
    sha = hashlib.sha256(big).hexdigest()
    assert att["sha256"] == sha and stored_files(root) == [root / sha[:2] / sha]


def _inject_commit_failure(url: str) -> tuple[list[str], list[str]]:
    """SQL that makes the transaction recording an upload fail: at COMMIT on PostgreSQL (a deferred
    constraint trigger), at the event's insert on SQLite (which has no deferred triggers)."""
    if url.startswith("postgresql"):
        return (
            [
                "CREATE FUNCTION test_fail_upload() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
                "CREATE CONSTRAINT TRIGGER test_fail_upload AFTER INSERT ON events "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "WHEN (NEW.event_type = 'attachment.uploaded') EXECUTE FUNCTION test_fail_upload()",
            ],
            [
                "DROP TRIGGER IF EXISTS test_fail_upload ON events",
                "DROP FUNCTION IF EXISTS test_fail_upload()",
            ],
        )
    return (
        [
            "CREATE TRIGGER test_fail_upload BEFORE INSERT ON events "
            "WHEN NEW.event_type = 'attachment.uploaded' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ],
        ["DROP TRIGGER IF EXISTS test_fail_upload"],
    )


def _run(url: str, statements: list[str]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql))
    engine.dispose()


def test_failed_transaction_leaves_no_row(api, chat, settings, root):
    seller, buyer, _, conv = chat
    up, down = _inject_commit_failure(settings.database_url)
    _run(settings.database_url, up)
    try:
        resp = upload(api, buyer, conv["id"], PNG)
        assert resp.status_code in (409, 500), resp.text
    finally:
        _run(settings.database_url, down)
    # Nothing of the upload was recorded: no row, no message, no event, no counter moved.
    assert api.count("attachments") == 0 and api.count("messages") == 0
    assert api.events("message.sent") == [] and api.events("notification.created") == []
    assert unread(api, seller, conv["id"]) == 0
    # The file may stay (documented): named by its hash, the next identical upload reuses it.
    sha = hashlib.sha256(PNG).hexdigest()
    assert stored_files(root) == [root / sha[:2] / sha]
    out: dict[str, Any] = data(upload(api, buyer, conv["id"], PNG), 201)
    assert api.events("attachment.uploaded")[0].payload["deduplicated"] is True
    assert api.client.get(out["attachment"]["url"], headers=seller.headers).content == PNG
