"""Authentication of HTTP callers: hashed API keys, optional OAuth 2.1 bearer JWTs, roles."""
