"""A storage URL's password: kept out of every file the run directory holds and every message printed.

``study.yaml``, ``fingerprint.yaml``, a dry run and error messages show the URL masked
(``postgresql://user:***@host/db``, SQLAlchemy's own rendering). The password is read at run time:
from the URL the study or ``--set storage=`` gives; for a URL whose password is masked or left out,
from ARCHSEARCH_STORAGE (the same URL with its password); else libpq finds it itself (PGPASSWORD,
``~/.pgpass``), so a URL without a password works as libpq would connect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from archsearch.errors import SpecError

ENVIRONMENT_VARIABLE = "ARCHSEARCH_STORAGE"
MASK = "***"
MIN_MASKED_ALONE = 4  # characters of a password for it to be masked wherever it appears in a message
_UNPARSED_PASSWORD = re.compile(r"^((?:[^:/@\s]*://)?[^:/@\s]*):[^@\s]+@")
_LIBPQ_PASSWORD_VARIABLES = ("PGPASSWORD", "PGPASSFILE")


def _parsed(url: str):
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def masked(url: str) -> str:
    """The URL as it may be written and printed: a password replaced by ``***`` (also in what is not a URL)."""
    parsed = _parsed(url)
    if parsed is None:
        return _UNPARSED_PASSWORD.sub(rf"\1:{MASK}@", url)
    if not parsed.password:  # none, or empty: nothing to hide, and the URL stays as written
        return url
    return parsed.render_as_string(hide_password=True)


def hide_secret(text: str, url: str | None) -> str:
    """``text`` (a driver's error message, say) with ``url``'s password masked wherever it appears."""
    if not url:
        return text
    text = text.replace(url, masked(url))
    parsed = _parsed(url)
    password = parsed.password if parsed is not None else None
    if password and password != MASK:
        for form in {password, quote(password, safe="")}:
            text = text.replace(f":{form}@", f":{MASK}@")
            if len(form) >= MIN_MASKED_ALONE:  # a shorter one alone would mask letters of every other word
                text = text.replace(form, MASK)
    return text


def connection_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    """The URL to connect with: ``url`` itself when it holds its password; for one whose password is masked
    or left out, ARCHSEARCH_STORAGE when that names the same storage; a masked one else relies on libpq's
    password file or variable. Raises SpecError (showing URLs masked) when the secret is nowhere."""
    environ = os.environ if environ is None else environ
    parsed = _parsed(url)
    if parsed is None or (parsed.password and parsed.password != MASK):
        return url
    secret = environ.get(ENVIRONMENT_VARIABLE) or None
    from_environment = _parsed(secret) if secret else None
    if from_environment is not None and from_environment.set(password=MASK) == parsed.set(password=MASK):
        return secret
    if parsed.password != MASK:  # written without a password: libpq's own environment, or none needed
        return url
    allowed = (f"{ENVIRONMENT_VARIABLE}=<this URL with its password>, --set storage=<the URL with its password>"
               ", or a URL without a password and libpq's PGPASSWORD or ~/.pgpass")
    if secret:
        raise SpecError(f"the storage's password is masked, and {ENVIRONMENT_VARIABLE} names another storage "
                        f"({masked(secret)})", path="storage", value=url, allowed=allowed)
    if parsed.get_backend_name() == "postgresql" and _libpq_has_password(environ):
        return parsed._replace(password=None).render_as_string(hide_password=False)  # URL is a NamedTuple
    raise SpecError(f"the storage's password is not stored (run directories keep it masked as {MASK}) and "
                    "was given nowhere", path="storage", value=url, allowed=allowed)


def _libpq_has_password(environ: Mapping[str, str]) -> bool:
    """Whether libpq has a password to find by itself: its variables, or the default password file."""
    if any(environ.get(name) for name in _LIBPQ_PASSWORD_VARIABLES):
        return True
    home = environ.get("HOME")
    return home is not None and (Path(home) / ".pgpass").is_file()
