"""Causette against a real Synapse (tests/matrix/homeserver.py), through real matrix-nio
clients: the homeserver as configured, encrypted rooms and direct chats, a restart of the bot
in the middle, and the issue's bad input as the server really delivers it."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.matrix.homeserver import Homeserver, MatrixError


def test_homeserver_rate_limits_are_relaxed(matrix_homeserver: Homeserver) -> None:
    """Misspelled rc_* keys are silently ignored by Synapse: a burst of everything the tests do
    (registrations, logins, room creations, joins, invites, messages) gets no 429."""
    hs = matrix_homeserver
    try:
        with ThreadPoolExecutor(4) as pool:
            users = list(pool.map(lambda i: hs.register(f"burst{i}"), range(15)))
        owner = users[0]
        for _ in range(8):
            hs.login(owner.localpart, owner.password)
        rooms = [hs.api("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}, token=owner.access_token)["room_id"]
                 for _ in range(12)]
        for user in users[1:]:
            hs.api("POST", f"/_matrix/client/v3/rooms/{rooms[0]}/invite", {"user_id": user.user_id}, token=owner.access_token)
        for user in users[1:]:
            hs.api("POST", f"/_matrix/client/v3/join/{rooms[0]}", {}, token=user.access_token)
        for i in range(40):
            hs.api("PUT", f"/_matrix/client/v3/rooms/{rooms[0]}/send/m.room.message/burst{i}",
                   {"msgtype": "m.text", "body": f"burst {i}"}, token=owner.access_token)
    except MatrixError as exc:
        raise AssertionError(f"the homeserver refused a burst: {exc}") from None
    messages = hs.api("GET", f"/_matrix/client/v3/rooms/{rooms[0]}/messages?dir=b&limit=100", token=owner.access_token)
    assert sum(1 for e in messages["chunk"] if e["type"] == "m.room.message") == 40
