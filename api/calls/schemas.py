"""Request and response bodies of the calls API, and the client frames of call signaling over /ws."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, Strict, model_validator

from api.calls.models import CallStatus
from api.core.schemas import RequestModel, ResponseModel

# An SDP with video and a few dozen candidates stays well under this; the socket's frame limit
# (settings.ws_max_message_bytes) bounds it as well.
MAX_SDP_CHARS = 60_000
MAX_CANDIDATE_CHARS = 1_000


class CallType(StrEnum):
    audio = "audio"
    video = "video"


# Enums arrive as their JSON string values; strict mode would otherwise want enum instances.
CallTypeIn = Annotated[CallType, Strict(False)]
CallStatusIn = Annotated[CallStatus, Strict(False)]
CallId = Annotated[int, Field(ge=1)]


class CallInitiate(RequestModel):
    receiver_id: CallId
    call_type: CallTypeIn
    conversation_id: CallId | None = None


class UserRef(ResponseModel):
    id: int
    username: str


class CallOut(ResponseModel):
    """The same for both participants, so the one shape serves REST answers and live pushes."""

    id: int
    caller: UserRef
    receiver: UserRef
    conversation_id: int | None
    call_type: str
    status: str
    # Seconds between accept and end for an ended call; 0 for a rejected or missed one; None while live.
    duration: int | None
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime


# --- signaling frames over /ws (the frame's own "type" and "id" are removed before validation) ---


class SdpIn(RequestModel):
    """`call_offer` / `call_answer`: a session description, relayed verbatim and never stored."""

    call_id: CallId
    sdp: Annotated[str, Field(min_length=1, max_length=MAX_SDP_CHARS)]


class IceCandidate(RequestModel):
    """RTCIceCandidateInit as browsers send it; an empty `candidate` means end of candidates."""

    candidate: Annotated[str, Field(max_length=MAX_CANDIDATE_CHARS)]
    sdp_mid: Annotated[str, Field(max_length=64)] | None = None
    sdp_m_line_index: Annotated[int, Field(ge=0, le=1024)] | None = None
    username_fragment: Annotated[str, Field(max_length=256)] | None = None


class IceIn(RequestModel):
    call_id: CallId
    candidate: IceCandidate


class CallStateIn(RequestModel):
    """`call_state`: mute and audio/video toggles, relayed to the other participant as they are."""

    call_id: CallId
    muted: bool | None = None
    audio: bool | None = None
    video: bool | None = None

    @model_validator(mode="after")
    def _something_changed(self) -> CallStateIn:
        if self.muted is None and self.audio is None and self.video is None:
            raise ValueError("give at least one of muted, audio, video")
        return self
