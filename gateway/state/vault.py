"""Secrets the gateway is handed at run time (a SCOM landlord's `apiToken`), kept encrypted.

An embedded SQLite file holds them, each encrypted with Fernet (the
`cryptography` library's authenticated encryption) under a key from the
environment, so the file alone reveals nothing. Values never reach a log line
or the GraphQL API. Without a key, a sandbox gateway keeps them in memory only.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from gateway.errors import ConfigError

__all__ = ["Vault"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    secret BLOB NOT NULL,
    PRIMARY KEY (provider, subject)
)
"""


class Vault:
    def __init__(self, path: str | Path, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                "The vault key is not a Fernet key (32 url-safe base64 bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)."
            ) from None
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(_SCHEMA)

    @classmethod
    def ephemeral(cls) -> Vault:
        return cls(":memory:", Fernet.generate_key())

    def put_now(self, provider: str, subject: str, secret: str) -> None:
        sealed = self._fernet.encrypt(secret.encode())
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO secrets (provider, subject, secret) VALUES (?, ?, ?)",
                (provider, subject, sealed),
            )

    def get_now(self, provider: str, subject: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT secret FROM secrets WHERE provider = ? AND subject = ?",
                (provider, subject),
            ).fetchone()
        if row is None:
            return None
        try:
            return self._fernet.decrypt(row[0]).decode()
        except InvalidToken:
            raise ConfigError(
                "The vault holds secrets sealed with another key; the key was changed."
            ) from None

    def subjects_now(self, provider: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT subject FROM secrets WHERE provider = ? ORDER BY subject", (provider,)
            ).fetchall()
        return [row[0] for row in rows]

    def delete_now(self, provider: str, subject: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "DELETE FROM secrets WHERE provider = ? AND subject = ?", (provider, subject)
            )

    async def put(self, provider: str, subject: str, secret: str) -> None:
        await asyncio.to_thread(self.put_now, provider, subject, secret)

    async def get(self, provider: str, subject: str) -> str | None:
        return await asyncio.to_thread(self.get_now, provider, subject)

    async def subjects(self, provider: str) -> list[str]:
        return await asyncio.to_thread(self.subjects_now, provider)

    async def delete(self, provider: str, subject: str) -> None:
        await asyncio.to_thread(self.delete_now, provider, subject)

    def close(self) -> None:
        with self._lock:
            self._db.close()
