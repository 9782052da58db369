"""Ed25519 keys and signatures (``cryptography``) for bundle manifests.

Keys are PEM files: PKCS#8 private key (unencrypted, written mode 0600 and never overwritten)
and SubjectPublicKeyInfo public key. A key is named by its fingerprint, ``sha256:<hex>`` of the
raw 32-byte public key, which the signed manifest records so a wrong key is told apart from a
bad signature.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edgeperc.bundle.errors import SignatureError, WrongKeyError
from edgeperc.errors import ConfigError

PRIVATE_NAME = "edgeperc-bundle.key"
PUBLIC_NAME = "edgeperc-bundle.pub"
SIGNATURE_BYTES = 64


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    except ImportError as exc:  # pragma: no cover - cryptography is a dependency of the bundle verbs
        raise ConfigError(f"`edgeperc bundle` needs the `cryptography` package: pip install cryptography ({exc})") from exc
    return serialization, Ed25519PrivateKey, Ed25519PublicKey, InvalidSignature


def _raw_public(public_key) -> bytes:
    serialization = _crypto()[0]
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key) -> str:
    """``sha256:<64 hex>`` of the raw Ed25519 public key."""
    return "sha256:" + hashlib.sha256(_raw_public(public_key)).hexdigest()


def public_pem(public_key) -> bytes:
    serialization = _crypto()[0]
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_keypair(out_dir: str | Path, name: str = "edgeperc-bundle") -> tuple[Path, Path, str]:
    """Write ``<name>.key`` (0600) and ``<name>.pub`` into ``out_dir``; (private, public, fingerprint).
    Refuses (ConfigError) when either file exists: a signing key is never overwritten."""
    serialization, Ed25519PrivateKey, _, _ = _crypto()
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    existing = [str(p) for p in (private_path, public_path) if p.exists() or p.is_symlink()]
    if existing:
        raise ConfigError(f"refusing to overwrite existing key file(s): {', '.join(existing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    # O_EXCL: never follow or replace a file that appeared meanwhile; 0600 from the first byte.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_bytes)
    os.chmod(private_path, 0o600)  # in case the umask or the filesystem widened it
    fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(public_pem(key.public_key()))
    return private_path, public_path, fingerprint(key.public_key())


def load_private_key(path: str | Path):
    serialization, Ed25519PrivateKey, _, _ = _crypto()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"signing key not found: {path} (make one with `edgeperc bundle keygen --out DIR`)")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is a {type(key).__name__}, expected an Ed25519 private key")
    return key


def load_public_key(path: str | Path):
    serialization, _, Ed25519PublicKey, _ = _crypto()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"public key not found: {path}")
    data = path.read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        if b"PRIVATE KEY" in data:
            raise ConfigError(f"{path} is a private key: verify with the public key (.pub)") from exc
        raise ConfigError(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is a {type(key).__name__}, expected an Ed25519 public key")
    return key


def sign(private_key, data: bytes) -> bytes:
    return private_key.sign(data)


def check_signature(public_key, data: bytes, signature: bytes | None, signer_fingerprint: str | None) -> None:
    """Raise WrongKeyError when the manifest names another signer, SignatureError when the
    signature is missing, malformed or does not verify over ``data``."""
    InvalidSignature = _crypto()[3]
    given = fingerprint(public_key)
    if signer_fingerprint is not None and signer_fingerprint != given:
        raise WrongKeyError(f"bundle refused (wrong key): it was signed by {signer_fingerprint}, "
                            f"the key given is {given}")
    if signature is None:
        raise SignatureError("bundle refused (signature): bundle.json.sig is missing")
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureError(f"bundle refused (signature): bundle.json.sig holds {len(signature)} bytes, "
                             f"an Ed25519 signature has {SIGNATURE_BYTES}")
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        raise SignatureError(f"bundle refused (signature): the Ed25519 signature over bundle.json does not verify "
                             f"with key {given} (manifest or signature altered)") from None
