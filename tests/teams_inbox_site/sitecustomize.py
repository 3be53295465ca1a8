"""Loaded by the `python app.py serve` of tests/test_teams_inbox.py only (this folder is on its
PYTHONPATH): the bot's outgoing access token comes from Azure AD, out of reach of a test, so
it is a fixed string here. Everything else (token checks, inbox, turns, replies) is the real code."""
from botframework.connector.auth import MicrosoftAppCredentials


def _test_token(self: MicrosoftAppCredentials, force_refresh: bool = False) -> str:
    return "test-outgoing-token"


MicrosoftAppCredentials.get_access_token = _test_token  # type: ignore[method-assign]
