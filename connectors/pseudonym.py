"""Keyed HMAC-SHA-256 pseudonyms for people and organisations, computed before anything reaches Kafka."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from pathlib import Path

from infra.settings import Settings

logger = logging.getLogger(__name__)

KEYS_FILE_NAME = "pseudonym.keys"


class Pseudonymiser:
    """Turns personal identifiers into stable pseudonyms.

    The same identifier always gives the same pseudonym under the same key, so counts of distinct
    learners stay exact; without the key the pseudonym cannot be reversed or recomputed. Person and
    organisation identifiers use separate keys. Identifiers are normalised (trimmed, lower-cased) so
    that `Ana@X.org` and `ana@x.org ` are one person.

    Args:
        person_key: secret key for people (at least 16 bytes).
        org_key: secret key for organisations (at least 16 bytes).
    """

    __slots__ = ("_org_key", "_person_key")

    def __init__(self, person_key: bytes, org_key: bytes) -> None:
        if len(person_key) < 16 or len(org_key) < 16:
            raise ValueError("pseudonym keys must be at least 16 bytes long")
        self._person_key = person_key
        self._org_key = org_key

    def __repr__(self) -> str:
        return "Pseudonymiser(<keys hidden>)"

    @classmethod
    def from_settings(cls, settings: Settings) -> Pseudonymiser:
        """Build from `settings.pseudonym`, creating and reusing local keys where none are configured.

        Missing keys are generated once into `<state_dir>/pseudonym.keys` (mode 0600) and read back on
        every later start, so pseudonyms stay stable across runs of the local stack.

        Raises:
            ValueError: when the keys file exists but cannot be parsed.
        """
        person = settings.pseudonym.person_key
        org = settings.pseudonym.org_key
        if person is not None and org is not None:
            return cls(person.get_secret_value().encode(), org.get_secret_value().encode())
        stored = load_or_create_keys(Path(settings.state_dir) / KEYS_FILE_NAME)
        person_key = person.get_secret_value().encode() if person is not None else stored[0]
        org_key = org.get_secret_value().encode() if org is not None else stored[1]
        return cls(person_key, org_key)

    def person(self, identifier: str) -> str:
        """Pseudonym of a person identifier (e-mail, account name, LMS user id); prefix `p-`."""
        return "p-" + _hmac(self._person_key, identifier)

    def org(self, identifier: str) -> str:
        """Pseudonym of an organisation identifier (tax id, directory id); prefix `o-`."""
        return "o-" + _hmac(self._org_key, identifier)


def _hmac(key: bytes, identifier: str) -> str:
    normalised = identifier.strip().lower().encode()
    # 128 bits are plenty against collisions among millions of learners and keep keys short.
    return hmac.new(key, normalised, hashlib.sha256).hexdigest()[:32]


def load_or_create_keys(path: Path) -> tuple[bytes, bytes]:
    """Read the local key pair, creating it with fresh random keys (mode 0600) when absent.

    Returns:
        (person_key, org_key) as bytes.

    Raises:
        ValueError: when the file exists but is not a valid keys file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        content = json.dumps({"person_key": secrets.token_hex(32), "org_key": secrets.token_hex(32)})
        try:
            # O_EXCL: when two processes start at once, one creates the file and the other reads it.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
            logger.info("created local pseudonym keys in %s", path)
    content = path.read_text()
    for _ in range(40):
        # Another process may have created the file an instant ago and not written it yet.
        if content:
            break
        time.sleep(0.05)
        content = path.read_text()
    try:
        data = json.loads(content)
        return bytes.fromhex(data["person_key"]), bytes.fromhex(data["org_key"])
    except (ValueError, KeyError, TypeError) as exc:
        # The message names the file only: the content is secret.
        raise ValueError(f"invalid pseudonym keys file {path}") from exc
