"""HTTPS for ``bulksim serve``: a local CA and its certificate, or the user's own pair.

``--tls`` makes a fresh CA and a certificate for ``127.0.0.1``, ``localhost`` and ``::1``
(and the bound host, when it is a specific one) signed by it, with trustme. The CA bundle is
written next to them: in ``--tls-dir`` when given, else in a temporary directory that lives as
long as the server, so that parallel servers never share files. Clients trust the CA bundle
(``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS``, ``curl --cacert``).

``--tls-cert`` and ``--tls-key`` serve the user's own certificate instead; both are read once
at start so that a missing or unusable file is one clear error, not a traceback.
"""

from __future__ import annotations

import ipaddress
import signal
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from simulator.settings import Settings, SettingsError

__all__ = ["LOCAL_IDENTITIES", "TlsFiles", "tls_files"]

LOCAL_IDENTITIES = ("127.0.0.1", "localhost", "::1")
SHUTDOWN_GRACE_SECONDS = 2


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """What uvicorn serves (``certfile``, ``keyfile``) and what clients trust (``ca_file``).

    ``ca_file`` is ``None`` when the certificate is the user's own.
    """

    certfile: Path
    keyfile: Path
    ca_file: Path | None = None

    def uvicorn_options(self) -> dict[str, Any]:
        """``uvicorn.Config`` arguments that serve this certificate.

        Stopping closes each idle TLS connection with a close_notify and asyncio then waits
        up to 30 s for the client's own, which a pooled idle connection never sends: the
        grace period bounds that wait (plain HTTP closes at once and needs none).
        """
        return {
            "ssl_certfile": str(self.certfile),
            "ssl_keyfile": str(self.keyfile),
            "timeout_graceful_shutdown": SHUTDOWN_GRACE_SECONDS,
        }


@contextmanager
def tls_files(settings: Settings) -> Iterator[TlsFiles | None]:
    """The certificate files for ``settings``, for as long as the server runs; ``None``: HTTP."""
    if settings.tls_cert is not None and settings.tls_key is not None:
        yield own_certificate(Path(settings.tls_cert), Path(settings.tls_key))
    elif not settings.tls:
        yield None
    elif settings.tls_dir is not None:
        yield local_certificate(Path(settings.tls_dir), settings.host)
    else:
        with _server_lifetime_directory() as directory:
            yield local_certificate(directory, settings.host)


@contextmanager
def _server_lifetime_directory() -> Iterator[Path]:
    """A fresh temporary directory, removed when the server stops, SIGTERM included.

    uvicorn stops on SIGTERM, then raises the signal again with its former handler in place.
    The default one would end the process before this directory is removed, so while it
    exists SIGTERM raises ``SystemExit`` (status 143, as a signal death would report).
    """
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    if previous is not None:
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        with tempfile.TemporaryDirectory(prefix="bulksim-tls-") as directory:
            yield Path(directory)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def local_certificate(directory: Path, host: str) -> TlsFiles:
    """Make a CA and a certificate it signs for the loopback names and ``host``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"cannot create --tls-dir {directory}: {exc.strerror}") from None
    import trustme  # (and cryptography) only to serve HTTPS

    ca = trustme.CA(organization_name="bulksim local CA")
    leaf = ca.issue_cert(*identities(host))
    ca_file = directory / "ca.pem"
    files = TlsFiles(directory / "cert.pem", directory / "key.pem", ca_file)
    try:
        ca.cert_pem.write_to_path(ca_file)
        files.keyfile.touch(mode=0o600)
        leaf.private_key_pem.write_to_path(files.keyfile)
        files.certfile.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    except OSError as exc:
        raise SettingsError(f"cannot write to --tls-dir {directory}: {exc.strerror}") from None
    return files


def identities(host: str) -> tuple[str, ...]:
    """The loopback names, plus ``host`` when it names one address rather than all of them."""
    try:
        specific = not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        specific = bool(host)
    if not specific or host in LOCAL_IDENTITIES:
        return LOCAL_IDENTITIES
    return (*LOCAL_IDENTITIES, host)


def own_certificate(certfile: Path, keyfile: Path) -> TlsFiles:
    """Check the user's pair the way the server will load it, naming the file at fault."""
    for flag, path in (("--tls-cert", certfile), ("--tls-key", keyfile)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise SettingsError(f"cannot read {flag} {path}: {exc.strerror}") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        raise SettingsError(
            f"--tls-cert {certfile} and --tls-key {keyfile} are not a usable PEM "
            f"certificate and key: {exc.reason or exc}"
        ) from None
    return TlsFiles(certfile, keyfile)
