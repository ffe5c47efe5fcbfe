"""The identity service: one object the API layers use, composed of the use-case mixins.

Login and tokens live in tokens.py, users/passwords/2FA in accounts.py, roles/teams/grants
in directory.py and API keys in keys.py; shared plumbing in _service_core.py.
"""

from __future__ import annotations

from app.identity.accounts import AccountUseCases
from app.identity.directory import DirectoryUseCases
from app.identity.keys import KeyUseCases
from app.identity.tokens import TokenPair, TokenUseCases

__all__ = ["IdentityService", "TokenPair"]


class IdentityService(TokenUseCases, AccountUseCases, DirectoryUseCases, KeyUseCases):
    """Every identity use case behind one facade (constructed once by `init_app`)."""
