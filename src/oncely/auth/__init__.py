"""Authentication: who is calling.

Design notes:

- Passwords are hashed with argon2id (``passwords``). A login for a name that does not exist
  still verifies a password against a dummy hash, so the answer takes as long either way and
  says nothing about which names exist. Hashes made with older parameters are redone at the
  next successful login.
- Access tokens are JWTs (``tokens``) signed with HS256 only, with a 32-byte key generated
  on the store's first start and kept in the store (``server_secrets``), so every API process
  of a cluster signs and checks with the same key and no default key exists anywhere. They
  are short-lived (15 minutes by default) and carry ``sub`` (the user's id), ``iat``,
  ``exp``, ``iss`` and ``aud``, all required.
- API keys (``apikeys``) look like ``oncely_<prefix>_<secret>``. The prefix (public) finds
  the row; the store keeps an HMAC-SHA256 of the secret under a second stored key, never the
  secret, which is shown once. A high-entropy random secret needs no slow hash: a fast keyed
  hash cannot be brute-forced, and checking a key stays cheap on every request.
- Every credential is checked against the user's current row on each request: a disabled
  user's tokens and keys stop working at once, and a role change applies to the next request.
- ``Authenticator`` (``service``) ties these to the store; the HTTP layer and the CLI use it.
"""

from __future__ import annotations

from oncely.auth.service import Authenticator, LoginRefused

__all__ = ["Authenticator", "LoginRefused"]
