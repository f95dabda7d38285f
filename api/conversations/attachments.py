"""Conversation attachments (issue 3, item 3): upload a file into a conversation, download it back.

Upload: `POST /api/conversations/{id}/attachments`, multipart with a `file` part and an optional
`caption`. The body is parsed as it arrives: the file's bytes go straight to a temporary file under
`attachments_dir/tmp` while they are hashed, so a 10 MiB upload is never held in memory, and the size
limit and the content check stop a bad upload without reading the rest of it. The declared type must
be in `settings.attachment_types` (else 415) and the bytes must agree with it (magic numbers; text must
be UTF-8), else 422.

Storage is content-addressed: `<attachments_dir>/<sha256[:2]>/<sha256>`. The file is written (and
fsynced) before the transaction that records it; the attachment row, its message (through
`service.post_message`, which does counters, notification and the message event) and the
`attachment.uploaded` event commit together or not at all.

Orphans: if that transaction fails, the file may stay on disk without a row. That is harmless: its
name is its hash, so the next identical upload reuses it, and no row ever names a wrong file. It is
deliberately not deleted on failure, because a concurrent identical upload may have committed a row
that names the same file. A sweep of files no row names can reclaim the space if it ever matters.

Download: `GET /api/attachments/{id}`, for whoever may read the conversation (its participants, and
admins as for the conversation itself); everyone else gets a 404."""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Request
from fastapi.responses import FileResponse, Response
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.conversations import service
from api.conversations.models import Attachment
from api.conversations.schemas import (
    MAX_MESSAGE_CHARS,
    AttachmentOut,
    AttachmentUploadOut,
    MessageOut,
)
from api.core.deps import CurrentUser, Principal, ReadDb, SettingsDep, StoreDep, UowDep
from api.core.errors import ApiError, Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from api.core.responses import Envelope, EnvelopeResponse, ok
from api.core.settings import Settings
from api.db.engine import Store
from api.outbox.service import Uow
from api.outbox.types import EventType

log = structlog.get_logger("api")
router = APIRouter(tags=["conversations"])

FILE_FIELD, CAPTION_FIELD = "file", "caption"
HEAD_BYTES = 16  # enough for every signature below
MAX_CAPTION_BYTES = MAX_MESSAGE_CHARS * 4  # UTF-8 needs at most four bytes a character
MAX_NAME_CHARS = 200

# Magic numbers of the types we know how to verify. An allowed type without an entry here is refused:
# accepting bytes we cannot check would make the allow-list a suggestion.
SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    "image/png": lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": lambda h: h.startswith(b"\xff\xd8\xff"),
    "image/gif": lambda h: h.startswith((b"GIF87a", b"GIF89a")),
    "image/webp": lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP",
    "application/pdf": lambda h: h.startswith(b"%PDF-"),
    "text/plain": lambda h: True,  # checked as a whole: it must decode as UTF-8 and hold no NUL
}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
_NAME_FORBIDDEN = set('"<>:|?*;\\/')


def _mismatch(declared: str) -> ValidationFailed:
    return ValidationFailed(
        f"The file's content is not {declared}",
        code="CONTENT_TYPE_MISMATCH",
        details=[{"field": FILE_FIELD, "message": f"content does not match the declared type {declared}"}],
    )


def _invalid(fld: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"Invalid upload: {fld}: {message}", details=[{"field": fld, "message": message}])


def clean_name(raw: str | None, content_type: str) -> str:
    """The client's file name, safe to store and to echo in Content-Disposition: no path, no control or
    bidi characters, no quoting or shell-ish punctuation, at most 200 characters (extension kept)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in _NAME_FORBIDDEN)
    name = " ".join(name.split()).strip(" .")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        name = (
            f"{stem[: MAX_NAME_CHARS - len(ext) - 1]}.{ext}"
            if dot and stem and len(ext) <= 16
            else name[:MAX_NAME_CHARS]
        )
    return name or f"attachment{EXTENSIONS.get(content_type, '')}"


# --- receiving the body -----------------------------------------------------------------------------


@dataclass
class _Sink:
    """The file part on its way to disk: a temporary file, its running hash, size and first bytes.
    Its methods do blocking I/O and run in the thread pool."""

    tmp_dir: Path
    content_type: str
    path: Path | None = None
    size: int = 0
    head: bytes = b""
    sha: Any = field(default_factory=hashlib.sha256)
    _fd: int | None = None
    _text: codecs.IncrementalDecoder | None = None

    def __post_init__(self) -> None:
        if self.content_type == "text/plain":
            self._text = codecs.getincrementaldecoder("utf-8")()

    def write(self, data: bytes) -> None:
        if self._fd is None:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="upload-")
            self._fd, self.path = fd, Path(name)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        if self._text is not None:
            self._check_text(data, final=False)
        self.sha.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def _check_text(self, data: bytes, *, final: bool) -> None:
        assert self._text is not None
        try:
            self._text.decode(data, final=final)
        except UnicodeDecodeError:
            raise _mismatch("text/plain (UTF-8)") from None
        if b"\x00" in data:
            raise _mismatch("text/plain (it holds NUL bytes)")

    def finish(self) -> None:
        if self._text is not None:
            self._check_text(b"", final=True)
        if self._fd is not None:
            # On disk before the row that names it commits: a crash never leaves a row without its bytes.
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


@dataclass
class _Form:
    """The multipart callbacks: a `file` part streamed to a _Sink, an optional `caption`, nothing else."""

    tmp_dir: Path
    allowed: frozenset[str]
    max_bytes: int
    sink: _Sink | None = None
    filename: str | None = None
    caption: str | None = None
    pending: list[bytes] = field(default_factory=list)  # file bytes parsed, not yet written
    _header_name: bytes = b""
    _header_value: bytes = b""
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _part: str = ""  # the current part's role: "file", "caption" or ""
    _field_data: bytearray = field(default_factory=bytearray)
    _file_bytes: int = 0

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._headers.clear()
        self._part = ""
        self._field_data.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        is_file = b"filename" in options
        if name == FILE_FIELD and is_file:
            if self.sink is not None:
                raise _invalid(FILE_FIELD, "send one file per upload")
            declared = self._declared_type()
            self.filename = options[b"filename"].decode("utf-8", "replace")
            self.sink = _Sink(self.tmp_dir, declared)
            self._part = FILE_FIELD
        elif name == CAPTION_FIELD and not is_file:
            if self.caption is not None:
                raise _invalid(CAPTION_FIELD, "send one caption")
            self._part = CAPTION_FIELD
        elif name == FILE_FIELD:
            raise _invalid(FILE_FIELD, "must be a file part (with a filename)")
        else:
            raise _invalid(
                name or "(unnamed)", f"unknown field; expected '{FILE_FIELD}' and '{CAPTION_FIELD}'"
            )

    def _declared_type(self) -> str:
        raw = self._headers.get(b"content-type", b"").decode("latin-1")
        declared = raw.split(";", 1)[0].strip().lower() or "application/octet-stream"
        declared = ALIASES.get(declared, declared)
        if declared not in self.allowed or declared not in SIGNATURES:
            raise ApiError(
                f"Files of type {declared} are not accepted",
                status_code=415,
                code="UNSUPPORTED_MEDIA_TYPE",
                details={"contentType": declared, "allowed": sorted(self.allowed & SIGNATURES.keys())},
            )
        return declared

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == FILE_FIELD:
            self._file_bytes += end - start
            if self._file_bytes > self.max_bytes:
                raise PayloadTooLarge(
                    f"The file exceeds {self.max_bytes} bytes", details={"limitBytes": self.max_bytes}
                )
            self.pending.append(data[start:end])
        else:
            self._field_data += data[start:end]
            if len(self._field_data) > MAX_CAPTION_BYTES:
                raise _invalid(CAPTION_FIELD, f"at most {MAX_MESSAGE_CHARS} characters")

    def on_part_end(self) -> None:
        if self._part != CAPTION_FIELD:
            return
        try:
            caption = self._field_data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise _invalid(CAPTION_FIELD, "must be UTF-8 text") from None
        if len(caption) > MAX_MESSAGE_CHARS:
            raise _invalid(CAPTION_FIELD, f"at most {MAX_MESSAGE_CHARS} characters")
        self.caption = caption


@dataclass(frozen=True)
class _Stored:
    sha256: str
    content_type: str
    size: int
    original_name: str
    caption: str
    deduplicated: bool


def _boundary(request: Request) -> bytes:
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise ApiError(
            "Send the attachment as multipart/form-data",
            status_code=415,
            code="UNSUPPORTED_MEDIA_TYPE",
            details={"expected": "multipart/form-data"},
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise _invalid("body", "multipart/form-data needs a boundary")
    return boundary


def _check_head(sink: _Sink) -> None:
    if not SIGNATURES[sink.content_type](sink.head):
        raise _mismatch(sink.content_type)


async def _receive(request: Request, root: Path, allowed: frozenset[str], max_bytes: int) -> _Stored:
    """Streams the body: file bytes to disk as they are parsed, checked as early as they can be."""
    form = _Form(tmp_dir=root / "tmp", allowed=allowed, max_bytes=max_bytes)
    parser = MultipartParser(_boundary(request), form.callbacks())  # type: ignore[arg-type]
    head_checked = False
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except FormParserError:
                raise _invalid("body", "malformed multipart data") from None
            if form.pending and form.sink is not None:
                data = b"".join(form.pending)
                form.pending.clear()
                await run_in_threadpool(form.sink.write, data)
                if not head_checked and len(form.sink.head) >= HEAD_BYTES:
                    _check_head(form.sink)  # a lying type stops here, not after 10 MiB
                    head_checked = True
        try:
            parser.finalize()
        except FormParserError:
            raise _invalid("body", "malformed multipart data") from None
        sink = form.sink
        if sink is None:
            raise _invalid(FILE_FIELD, "a file part named 'file' is required")
        if sink.size == 0:
            raise _invalid(FILE_FIELD, "the file is empty")
        await run_in_threadpool(sink.finish)
        _check_head(sink)
        sha, deduplicated = await run_in_threadpool(_place, sink, root)
    except BaseException:
        if form.sink is not None:
            form.sink.discard()
        raise
    return _Stored(
        sha256=sha,
        content_type=sink.content_type,
        size=sink.size,
        original_name=clean_name(form.filename, sink.content_type),
        caption=form.caption or "",
        deduplicated=deduplicated,
    )


def file_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def _place(sink: _Sink, root: Path) -> tuple[str, bool]:
    """Moves the finished upload to its content-addressed name. Returns (sha256, already there)."""
    assert sink.path is not None
    sha = str(sink.sha.hexdigest())
    final = file_path(root, sha)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and final.stat().st_size == sink.size:
        sink.discard()
        return sha, True
    os.replace(sink.path, final)  # atomic: readers see no file or the whole file
    sink.path = None
    with contextlib.suppress(OSError):  # make the new name durable too, where the platform allows
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return sha, False


# --- recording --------------------------------------------------------------------------------------


def _check_can_post(store: Store, principal: Principal, conversation_id: int) -> None:
    """The cheap refusals (not a participant, blocked) before any of the body is read."""
    with store.read() as db:
        conv = service._participant(db, principal, conversation_id)
        recipient = conv.seller_id if conv.buyer_id == principal.user_id else conv.buyer_id
        if service.is_blocked(db, recipient, principal.user_id):
            raise Forbidden("The recipient does not accept your messages", code="BLOCKED")


def attachment_out(att: Attachment) -> AttachmentOut:
    assert att.message_id is not None
    return AttachmentOut(
        id=att.id,
        conversation_id=att.conversation_id,
        message_id=att.message_id,
        uploader_id=att.uploader_id,
        sha256=att.sha256,
        content_type=att.content_type,
        size_bytes=att.size_bytes,
        original_name=att.original_name,
        url=f"/api/attachments/{att.id}",
        created_at=att.created_at,
    )


def record_upload(uow: Uow, principal: Principal, conversation_id: int, up: _Stored) -> AttachmentUploadOut:
    """The attachment row, its message and the events, in one transaction (committed here)."""
    s = uow.session
    conv = service._participant(s, principal, conversation_id)  # before the row: its FK needs the conv
    att = Attachment(
        conversation_id=conv.id,
        message_id=None,
        uploader_id=principal.user_id,
        sha256=up.sha256,
        content_type=up.content_type,
        size_bytes=up.size,
        original_name=up.original_name,
        created_at=uow.now,
    )
    s.add(att)
    s.flush()  # the id, for the message's URL
    msg = service.post_message(
        uow,
        principal,
        conv.id,
        up.caption,
        message_type="image" if up.content_type.startswith("image/") else "file",
        attachment_url=f"/api/attachments/{att.id}",
        extra={"attachmentId": att.id, "contentType": up.content_type, "size": up.size},
    )
    att.message_id = msg.id
    uow.emit(
        EventType.attachment_uploaded,
        "attachment",
        att.id,
        {
            "conversationId": conv.id,
            "messageId": msg.id,
            "uploaderId": principal.user_id,
            "sha256": up.sha256,
            "contentType": up.content_type,
            "sizeBytes": up.size,
            "deduplicated": up.deduplicated,
        },
        shop_id=conv.shop_id,
        product_id=conv.product_id,
    )
    s.flush()
    out = AttachmentUploadOut(message=MessageOut.model_validate(msg), attachment=attachment_out(att))
    uow.commit()
    return out


def _root(settings: Settings) -> Path:
    root = settings.attachments_dir
    assert isinstance(root, Path)  # Settings fills it from data_dir
    return root


# --- routes -----------------------------------------------------------------------------------------

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary"},
                        CAPTION_FIELD: {"type": "string", "maxLength": MAX_MESSAGE_CHARS},
                    },
                }
            }
        },
    }
}


@router.post(
    "/api/conversations/{conversation_id}/attachments",
    status_code=201,
    response_model=Envelope[AttachmentUploadOut],
    openapi_extra=_UPLOAD_DOC,
)
async def upload_attachment(
    conversation_id: int,
    request: Request,
    principal: CurrentUser,
    uow: UowDep,
    store: StoreDep,
    settings: SettingsDep,
) -> EnvelopeResponse:
    await run_in_threadpool(_check_can_post, store, principal, conversation_id)
    stored = await _receive(
        request,
        _root(settings),
        frozenset(t.lower() for t in settings.attachment_types),
        settings.attachment_max_bytes,
    )
    out = await run_in_threadpool(record_upload, uow, principal, conversation_id, stored)
    return ok(out, status_code=201)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _visible_attachment(db: Session, principal: Principal, attachment_id: int) -> Attachment:
    att = db.get(Attachment, attachment_id)
    if att is None or att.message_id is None:
        raise NotFound("Attachment", attachment_id)
    try:
        service._visible(db, principal, att.conversation_id)
    except NotFound:
        raise NotFound("Attachment", attachment_id) from None  # say nothing about the conversation
    return att


@router.get(
    "/api/attachments/{attachment_id}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 304: {"description": "Not modified"}},
)
def download_attachment(
    attachment_id: int,
    principal: CurrentUser,
    db: ReadDb,
    settings: SettingsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    att = _visible_attachment(db, principal, attachment_id)
    db.rollback()  # done with the database; the file streams without holding a connection
    etag = f'"{att.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",  # cacheable by the client, revalidated (cheap: 304)
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if if_none_match and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    path = file_path(_root(settings), att.sha256)
    if not path.is_file():
        log.error("attachment_file_missing", attachment_id=att.id, sha256=att.sha256)
        raise NotFound("Attachment", attachment_id)
    image = att.content_type.startswith("image/")
    return FileResponse(
        path,
        media_type=att.content_type,
        headers=headers,
        filename=att.original_name,
        content_disposition_type="inline" if image else "attachment",
    )
