"""A real Matrix homeserver (Synapse) for the tests and the benchmark, installed and started
by the suite itself.

Synapse lives in its own virtualenv (`.venv-synapse/` at the repository root, or
`CAUSETTE_SYNAPSE_VENV`), never in Causette's: it pins its own Twisted, cryptography and
friends, and it only ever runs as a subprocess. `make test` creates it first (`python -m
tests.matrix.homeserver install`, ~40 s once, then a stamp); a plain `pytest` run creates it
on first use too, under a file lock so parallel runs install it once. Where it cannot be
installed or started, `SynapseUnavailable` says why: the tests skip with that reason, and
fail under `CI=true` (tests/conftest.py), the bench prints `matrix_skipped`.

`Homeserver(dir).start()` writes a homeserver.yaml of its own (127.0.0.1 only on a free port,
a client listener and no federation listener, SQLite, no key servers, no stats, presence
and URL previews off, bcrypt_rounds 4, registration by shared secret only, every `rc_*` rate
limit relaxed), starts it, waits for `/_matrix/client/versions`, and `register()` creates
users through the admin API (HMAC of the shared secret). `stop()` ends the process it started.
Each Homeserver has its own directory and port, so parallel runs on one machine don't collide.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
# Tested with 1.163.2. Synapse ships every two weeks; the range takes fixes, and a release
# that changes the config keys used here is a deliberate bump of this line.
SYNAPSE_REQUIREMENT = "matrix-synapse>=1.163,<1.170"
SERVER_NAME = "causette.test"
INSTALL_TIMEOUT = 600.0
START_TIMEOUT = 60.0

# Every rate limit Synapse reads (synapse/config/ratelimiting.py), relaxed. A misspelled key
# is silently ignored: tests/test_matrix_live.py checks that a burst of messages, logins,
# registrations, room creations, joins and invites gets no 429.
_FAST = {"per_second": 10000, "burst_count": 100000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _FAST,
    "rc_registration": _FAST,
    "rc_registration_token_validity": _FAST,
    "rc_login": {"address": _FAST, "account": _FAST, "failed_attempts": _FAST},
    "rc_admin_redaction": _FAST,
    "rc_joins": {"local": _FAST, "remote": _FAST},
    "rc_joins_per_room": _FAST,
    "rc_key_requests": _FAST,
    "rc_3pid_validation": _FAST,
    "rc_invites": {"per_room": _FAST, "per_user": _FAST, "per_issuer": _FAST},
    "rc_third_party_invite": _FAST,
    "rc_media_create": _FAST,
    "rc_presence": {"per_user": _FAST},
    "rc_delayed_event_mgmt": _FAST,
    "rc_room_creation": _FAST,
    "rc_reports": _FAST,
    "rc_user_directory": _FAST,
    "rc_profile": _FAST,
    "rc_federation": {"window_size": 1000, "sleep_limit": 10000, "sleep_delay": 1, "reject_limit": 100000,
                      "concurrent": 1000},
}


class SynapseUnavailable(RuntimeError):
    """Synapse could not be installed or started here (the message says why)."""


# Installation ------------------------------------------------------------------------------
def synapse_venv() -> Path:
    return Path(os.environ.get("CAUSETTE_SYNAPSE_VENV") or ROOT / ".venv-synapse")


def _stamp(venv: Path) -> Path:
    digest = hashlib.sha256(SYNAPSE_REQUIREMENT.encode()).hexdigest()[:12]
    return venv / f".installed-{digest}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def synapse_python(venv: Path | None = None, *, install: bool = True) -> Path:
    """The interpreter of a virtualenv holding Synapse (SYNAPSE_REQUIREMENT), created on first
    use under a file lock (parallel runs install it once). Raises SynapseUnavailable."""
    venv = venv or synapse_venv()
    python = venv / "bin" / "python"
    if _stamp(venv).exists() and python.exists():
        return python
    if not install:
        raise SynapseUnavailable(f"Synapse is not installed in {venv} (make synapse)")
    try:
        with _locked(venv.parent / (venv.name + ".lock")):
            return _install(venv, python)
    except OSError as exc:
        raise SynapseUnavailable(f"installing {SYNAPSE_REQUIREMENT} into {venv} failed: {exc}") from exc


def _install(venv: Path, python: Path) -> Path:
    if not (_stamp(venv).exists() and python.exists()):
        try:
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                               timeout=120)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "--timeout", "30", SYNAPSE_REQUIREMENT], check=True, capture_output=True, timeout=INSTALL_TIMEOUT)
            subprocess.run([str(python), "-c", "import synapse.app.homeserver"], check=True, capture_output=True,
                           timeout=120)
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
            raise SynapseUnavailable(f"installing {SYNAPSE_REQUIREMENT} into {venv} failed: {' | '.join(tail)}") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SynapseUnavailable(f"installing {SYNAPSE_REQUIREMENT} into {venv} failed: {exc}") from exc
        for old in venv.glob(".installed-*"):
            old.unlink()
        _stamp(venv).touch()
    return python


# The server --------------------------------------------------------------------------------
def scratch_dir(prefix: str = "causette-synapse-") -> Path:
    """A fresh directory for one homeserver: in /dev/shm when there is one (Synapse's SQLite
    commits cost no disk flush there: a message's echo takes ~30 ms instead of ~70 ms here),
    else the system's temporary directory. Unique, so parallel runs never share one."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Account:
    user_id: str
    localpart: str
    password: str
    access_token: str
    device_id: str


class MatrixError(RuntimeError):
    def __init__(self, status: int, body: dict[str, Any], what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {body}")
        self.status, self.body = status, body


class Homeserver:
    """One Synapse process in `directory` (its config, SQLite database, keys, media and log)."""

    def __init__(self, directory: Path, *, python: Path | None = None, server_name: str = SERVER_NAME) -> None:
        self.directory = Path(directory)
        self.python = python
        self.server_name = server_name
        self.shared_secret = secrets.token_hex(16)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "homeserver.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    # Configuration ---------------------------------------------------------------------
    def _write_config(self) -> Path:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        (d / "media").mkdir(exist_ok=True)
        key = d / "signing.key"
        if not key.exists():  # signedjson's format: algorithm, version, unpadded base64 of the seed
            seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            key.write_text(f"ed25519 a_{secrets.token_hex(2)} {seed}\n")
        log_config = d / "log.yaml"
        log_config.write_text(json.dumps({
            "version": 1, "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "filename": str(self.log), "formatter": "plain"}},
            "root": {"level": "WARNING", "handlers": ["file"]},
        }))
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.url + "/",
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                           "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
            "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
            "log_config": str(log_config),
            "media_store_path": str(d / "media"),
            "signing_key_path": str(key),
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "report_stats": False,
            "enable_metrics": False,
            "enable_registration": False,
            "registration_shared_secret": self.shared_secret,
            "bcrypt_rounds": 4,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "federation_domain_whitelist": [],
            "allow_public_rooms_over_federation": False,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            **RATE_LIMITS,
        }
        path = d / "homeserver.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    # Process ---------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> "Homeserver":
        python = self.python or synapse_python()
        problem = ""
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            config = self._write_config()
            out = open(self.directory / "stdout.log", "ab")
            self.process = subprocess.Popen(
                [str(python), "-m", "synapse.app.homeserver", "--config-path", str(config)],
                cwd=self.directory, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
            out.close()
            problem = self._wait_ready(timeout)
            if not problem:
                return self
            self.stop()
        raise SynapseUnavailable(f"Synapse did not start: {problem}")

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"exited with {self.process.returncode}: {self._tail()}"
            try:
                with urllib.request.urlopen(self.url + "/_matrix/client/versions", timeout=2) as resp:
                    if resp.status == 200:
                        return ""
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.05)  # the process gives no other readiness signal than its HTTP answer
        return f"no answer on {self.url} after {timeout:.0f} s: {self._tail()}"

    def _tail(self) -> str:
        lines: list[str] = []
        for name in ("stdout.log", "homeserver.log"):
            path = self.directory / name
            if path.exists():
                lines += path.read_text(errors="replace").strip().splitlines()[-3:]
        return " | ".join(lines)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def remove(self) -> None:
        """Stop, and delete the directory (its database, keys, media, log)."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "Homeserver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # HTTP ------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: dict[str, Any] | None = None, *, token: str = "",
            timeout: float = 30.0) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"raw": raw.decode(errors="replace")}
            raise MatrixError(exc.code, payload, f"{method} {path}") from None

    def register(self, localpart: str, *, password: str = "", admin: bool = False, displayname: str = "") -> Account:
        """A user created through the admin API with the shared secret (no login needed:
        the answer carries an access token and a device)."""
        password = password or secrets.token_hex(8)
        nonce = self.api("GET", "/_synapse/admin/v1/register")["nonce"]
        digest = hmac.new(self.shared_secret.encode(),
                          b"\x00".join(p.encode() for p in (nonce, localpart, password, "admin" if admin else "notadmin")),
                          hashlib.sha1).hexdigest()
        body = {"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": digest}
        if displayname:
            body["displayname"] = displayname
        got = self.api("POST", "/_synapse/admin/v1/register", body)
        return Account(got["user_id"], localpart, password, got["access_token"], got["device_id"])

    def login(self, localpart: str, password: str, device_id: str = "") -> Account:
        body: dict[str, Any] = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
                                "password": password}
        if device_id:
            body["device_id"] = device_id
        got = self.api("POST", "/_matrix/client/v3/login", body)
        return Account(got["user_id"], localpart, password, got["access_token"], got["device_id"])


def install_main() -> int:
    """`python -m tests.matrix.homeserver install`: create the Synapse venv (make synapse)."""
    started = time.monotonic()
    try:
        python = synapse_python()
    except SynapseUnavailable as exc:
        print(f"Synapse unavailable: {exc}", file=sys.stderr)
        return 1
    print(f"Synapse ready in {python.parent.parent} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        sys.exit(install_main())
    print("usage: python -m tests.matrix.homeserver install", file=sys.stderr)
    sys.exit(2)
