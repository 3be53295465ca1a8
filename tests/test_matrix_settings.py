"""Matrix settings and their check-config line (adapters/matrix/settings.py)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.matrix.settings import MatrixSettings, allowed_servers, configured, describe, missing


def test_describe_never_shows_a_secret_and_says_what_is_missing() -> None:
    s = MatrixSettings(matrix_homeserver="https://matrix.example.org/", matrix_user_id="@causette:example.org",
                       matrix_password="hunter2-secret")
    assert configured(s) and s.matrix_homeserver == "https://matrix.example.org"
    status = describe(s)
    assert status.configured and "hunter2" not in status.detail and "hunter2" not in repr(s)
    assert "MATRIX_STORE_PATH" in status.detail and missing(s)
    ok = s.model_copy(update={"matrix_store_path": "/var/lib/causette/matrix"})
    assert missing(ok) == [] and "needs" not in describe(ok).detail
    token = MatrixSettings(matrix_homeserver="https://m.example.org", matrix_user_id="@c:example.org",
                           matrix_access_token="syt_secret", matrix_encryption=False)
    assert "syt_secret" not in describe(token).detail and "syt_secret" not in repr(token)
    assert "MATRIX_DEVICE_ID" in describe(token).detail
    assert not describe(MatrixSettings()).configured
    assert "incomplete" in describe(MatrixSettings(matrix_user_id="@c:example.org")).detail


def test_allowed_servers_default_to_the_bots_own() -> None:
    s = MatrixSettings(matrix_user_id="@causette:example.org")
    assert allowed_servers(s) == frozenset({"example.org"})
    listed = s.model_copy(update={"matrix_allowed_servers": "example.org, Partner.org  other.net"})
    assert allowed_servers(listed) == frozenset({"example.org", "partner.org", "other.net"})


@pytest.mark.parametrize("field, value", [("matrix_homeserver", "matrix.example.org"), ("matrix_user_id", "causette"),
                                          ("matrix_user_id", "@causette"), ("matrix_command_prefix", "! causette")])
def test_bad_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        MatrixSettings(**{field: value})
