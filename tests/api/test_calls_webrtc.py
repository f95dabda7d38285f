"""Calls live, against a real uvicorn: `call_*` pushes over /ws, and two real aiortc peers that set up
a connection through the API's signaling frames and talk over a data channel.

The peer and socket code is bench/call_setup.py's, so the benchmark measures what is tested here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.core.clock import ManualClock
from api.core.settings import Settings
from bench.call_setup import (
    CallPeer,
    SignalError,
    WsClient,
    loopback_ice,
    measure_call_setup,
    opened,
    register,
)


def _run(scenario: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _quiet(ws: WsClient, *kinds: str) -> None:
    """Asserts that none of these frames reached the socket (after a round trip, so in-flight
    pushes have had their chance)."""
    await ws.request("ping")
    await asyncio.sleep(0.1)
    for kind in kinds:
        assert ws.frames[kind].empty(), f"unexpected {kind}: {ws.frames[kind].get_nowait()}"


async def _refused(ws: WsClient, kind: str, code: str, **fields: Any) -> dict[str, Any]:
    with pytest.raises(SignalError) as info:
        await ws.request(kind, **fields)
    assert info.value.error["code"] == code, info.value.error
    return info.value.error


class People:
    """Registered users with an open socket each."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url
        self.sockets: list[WsClient] = []

    async def person(self) -> tuple[int, str, WsClient]:
        user_id, token = await register(self.http)
        ws = await WsClient.connect(self.base_url, token)
        self.sockets.append(ws)
        return user_id, token, ws

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()


def test_two_aiortc_peers_connect_through_the_signaling(server_url):
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server_url, timeout=10) as http:
            people = People(http, server_url)
            caller_id, caller_token, caller_ws = await people.person()
            receiver_id, receiver_token, receiver_ws = await people.person()
            try:
                # Ringing, over REST, heard live by the receiver (and the caller's own sockets).
                resp = await http.post(
                    "/api/calls/initiate",
                    json={"receiverId": receiver_id, "callType": "video"},
                    headers=_auth(caller_token),
                )
                assert resp.status_code == 201, resp.text
                call_id = resp.json()["data"]["id"]
                incoming = await receiver_ws.next("call_incoming")
                assert incoming["data"]["id"] == call_id and incoming["data"]["status"] == "ringing"
                assert incoming["data"]["caller"]["id"] == caller_id
                assert (await caller_ws.next("call_incoming"))["data"]["id"] == call_id
                resp = await http.put(f"/api/calls/{call_id}/accept", headers=_auth(receiver_token))
                assert resp.status_code == 200, resp.text
                for ws in (caller_ws, receiver_ws):
                    accepted = await ws.next("call_accepted")
                    assert accepted["data"]["id"] == call_id and accepted["data"]["status"] == "active"

                # Offer, answer and trickled ICE candidates, relayed by the server only.
                with loopback_ice():
                    caller, callee = CallPeer(caller_ws, call_id), CallPeer(receiver_ws, call_id)
                    try:
                        await caller.offer()
                        offer = await callee.answer()
                        assert offer["fromUserId"] == caller_id and offer["callId"] == call_id
                        # The candidates did not ride in the SDP: they came as ice_candidate frames.
                        assert "a=candidate" not in offer["sdp"]
                        await caller.take_answer()
                        await asyncio.gather(caller.wait_connected(), callee.wait_connected())
                        assert caller.pc.connectionState == callee.pc.connectionState == "connected"
                        # Over loopback, with the candidates the other side trickled.
                        assert callee.pc.sctp is not None
                        remote = callee.pc.sctp.transport.transport.getRemoteCandidates()
                        assert remote and {c.ip for c in remote} == {"127.0.0.1"}

                        mine = await opened(await caller.channel)
                        mine.send("hello over webrtc")
                        assert await asyncio.wait_for(callee.messages.get(), 5) == "hello over webrtc"
                        theirs = await opened(await callee.channel)
                        theirs.send("hi back")
                        assert await asyncio.wait_for(caller.messages.get(), 5) == "hi back"
                    finally:
                        await caller.close()
                        await callee.close()

                # Mute and camera toggles reach the other side only.
                ack = await caller_ws.request("call_state", callId=call_id, muted=True, video=False)
                assert ack == {"callId": call_id, "relayed": True}
                state = await receiver_ws.next("call_state")
                assert state["data"] == {
                    "callId": call_id,
                    "fromUserId": caller_id,
                    "muted": True,
                    "video": False,
                }
                await receiver_ws.request("call_state", callId=call_id, audio=False)
                back = await caller_ws.next("call_state")
                assert back["data"] == {"callId": call_id, "fromUserId": receiver_id, "audio": False}

                # Hanging up is heard by both; signaling for the call stops.
                resp = await http.put(f"/api/calls/{call_id}/end", headers=_auth(caller_token))
                assert resp.status_code == 200 and resp.json()["data"]["status"] == "ended"
                for ws in (caller_ws, receiver_ws):
                    ended = await ws.next("call_ended")
                    assert ended["data"]["status"] == "ended" and isinstance(ended["data"]["duration"], int)
                await _refused(caller_ws, "call_offer", "INVALID_STATE_TRANSITION", callId=call_id, sdp="v=0")
                await _refused(
                    receiver_ws, "call_state", "INVALID_STATE_TRANSITION", callId=call_id, muted=True
                )
            finally:
                await people.close()

    _run(scenario)


def test_only_the_participants_signal_each_other(server_url):
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server_url, timeout=10) as http:
            people = People(http, server_url)
            caller_id, caller_token, caller_ws = await people.person()
            receiver_id, receiver_token, receiver_ws = await people.person()
            _, _, intruder_ws = await people.person()
            try:
                resp = await http.post(
                    "/api/calls/initiate",
                    json={"receiverId": receiver_id, "callType": "audio"},
                    headers=_auth(caller_token),
                )
                call_id = resp.json()["data"]["id"]
                await receiver_ws.next("call_incoming")

                # A third user can neither relay into the call nor learn that it exists.
                await _refused(intruder_ws, "call_offer", "NOT_FOUND", callId=call_id, sdp="v=0 intruder")
                await _refused(intruder_ws, "call_answer", "NOT_FOUND", callId=call_id, sdp="v=0 intruder")
                candidate = {"candidate": "candidate:1 1 udp 1 6.6.6.6 9 typ host", "sdpMid": "0"}
                await _refused(intruder_ws, "ice_candidate", "NOT_FOUND", callId=call_id, candidate=candidate)
                await _refused(intruder_ws, "call_state", "NOT_FOUND", callId=call_id, muted=True)
                await _refused(caller_ws, "call_offer", "NOT_FOUND", callId=999_999, sdp="v=0")
                await _quiet(receiver_ws, "call_offer", "call_answer", "ice_candidate", "call_state")
                await _quiet(intruder_ws, "call_incoming")

                # The participants may negotiate while it rings; the receiver hears the caller only.
                await caller_ws.request("call_offer", callId=call_id, sdp="v=0 caller")
                offer = await receiver_ws.next("call_offer")
                assert offer["data"] == {"callId": call_id, "fromUserId": caller_id, "sdp": "v=0 caller"}
                await receiver_ws.request("ice_candidate", callId=call_id, candidate=candidate)
                relayed = await caller_ws.next("ice_candidate")
                assert relayed["data"] == {
                    "callId": call_id,
                    "fromUserId": receiver_id,
                    "candidate": candidate,
                }
                await _quiet(caller_ws, "call_offer")  # never echoed to the sender
                # Toggles wait for the call to be answered.
                await _refused(
                    caller_ws, "call_state", "INVALID_STATE_TRANSITION", callId=call_id, muted=True
                )

                # Malformed frames are answered with a validation error.
                err = await _refused(caller_ws, "call_offer", "VALIDATION_ERROR", callId=call_id)
                assert err["details"][0]["field"] == "sdp"
                await _refused(caller_ws, "call_offer", "VALIDATION_ERROR", callId="1", sdp="v=0")
                await _refused(caller_ws, "call_offer", "VALIDATION_ERROR", callId=call_id, sdp="")
                await _refused(caller_ws, "call_answer", "VALIDATION_ERROR", callId=call_id, sdp="x" * 60_001)
                await _refused(caller_ws, "ice_candidate", "VALIDATION_ERROR", callId=call_id)
                await _refused(caller_ws, "call_state", "VALIDATION_ERROR", callId=call_id)
                await _refused(caller_ws, "call_state", "VALIDATION_ERROR", callId=call_id, muted="yes")

                # Once rejected, nobody signals any more.
                resp = await http.put(f"/api/calls/{call_id}/reject", headers=_auth(receiver_token))
                assert resp.json()["data"]["status"] == "rejected"
                for ws in (caller_ws, receiver_ws):
                    assert (await ws.next("call_rejected"))["data"]["id"] == call_id
                await _refused(caller_ws, "call_offer", "INVALID_STATE_TRANSITION", callId=call_id, sdp="v=0")
                await _quiet(intruder_ws, "call_rejected", "call_offer")
            finally:
                await people.close()

    _run(scenario)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"call_sweep_seconds": 0.05, "call_ring_timeout_seconds": 30})


def test_missed_and_cancelled_calls_are_pushed(server_url, clock: ManualClock):
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server_url, timeout=10) as http:
            people = People(http, server_url)
            caller_id, caller_token, caller_ws = await people.person()
            receiver_id, _, receiver_ws = await people.person()
            try:
                body = {"receiverId": receiver_id, "callType": "video"}
                # Nobody answers: the server's timer tells both sides.
                resp = await http.post("/api/calls/initiate", json=body, headers=_auth(caller_token))
                call_id = resp.json()["data"]["id"]
                await receiver_ws.next("call_incoming")
                clock.advance(timedelta(seconds=31))
                for ws in (caller_ws, receiver_ws):
                    missed = await ws.next("call_missed")
                    assert missed["data"]["id"] == call_id and missed["data"]["reason"] == "no_answer"
                # The in-app notifications come live too: the incoming call, then the missed one.
                titles = [(await receiver_ws.next("notification"))["data"]["title"] for _ in range(2)]
                assert titles[0].startswith("Incoming video call") and titles[1].startswith(
                    "Missed video call"
                )
                # The caller hangs up before an answer.
                resp = await http.post("/api/calls/initiate", json=body, headers=_auth(caller_token))
                second = resp.json()["data"]["id"]
                await receiver_ws.next("call_incoming")
                resp = await http.put(f"/api/calls/{second}/end", headers=_auth(caller_token))
                assert resp.json()["data"]["status"] == "missed"
                cancelled = await receiver_ws.next("call_missed")
                assert cancelled["data"]["id"] == second and cancelled["data"]["reason"] == "cancelled"
                assert caller_id != receiver_id
            finally:
                await people.close()

    _run(scenario)


def test_the_call_setup_bench_sets_up_calls_through_the_server(server_url):
    """bench/call_setup.py's measurement runs end to end (speed is measured there, not asserted here)."""
    times = asyncio.run(measure_call_setup(server_url, 3))
    assert len(times) == 3 and all(t > 0 for t in times)
