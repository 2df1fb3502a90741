"""RSA SHA256withRSA signatures and AEAD_AES_256_GCM, shared by the providers and the sandbox.

Both platforms sign with PKCS#1 v1.5 + SHA-256 ("RSA2" at Alipay, "WECHATPAY2-SHA256-RSA2048"
at WeChat) and exchange base64 signatures. Keys travel as PEM text; Alipay's habit of giving
bare base64 bodies without the PEM armour is accepted too.
"""

from __future__ import annotations

import base64
import binascii
import textwrap

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class CryptoFailure(Exception):
    """A signature did not verify or a ciphertext did not decrypt."""


def _armour(text: str, label: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "\n".join(textwrap.wrap(text, 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """PKCS#8 or PKCS#1 PEM, with or without the armour lines."""
    data = pem.strip()
    if not data.startswith("-----BEGIN"):
        # A bare body: PKCS#8 starts with the AlgorithmIdentifier, PKCS#1 does not.
        label = "PRIVATE KEY" if "BgkqhkiG9w0BAQE" in data[:40] else "RSA PRIVATE KEY"
        raw = _armour(data, label)
    else:
        raw = data.encode()
    key = serialization.load_pem_private_key(raw, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_armour(pem, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def sign_sha256_rsa(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5) signature."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify_sha256_rsa(key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> None:
    """Raise `CryptoFailure` unless `signature_b64` is a valid signature of `message`."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise CryptoFailure("signature does not verify") from exc


def aes_gcm_encrypt(key: str, nonce: str, plaintext: bytes, associated_data: str) -> str:
    """AEAD_AES_256_GCM as WeChat uses it: UTF-8 key and nonce, base64(ciphertext + tag)."""
    sealed = AESGCM(key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return base64.b64encode(sealed).decode()


def aes_gcm_decrypt(key: str, nonce: str, ciphertext_b64: str, associated_data: str) -> bytes:
    try:
        sealed = base64.b64decode(ciphertext_b64, validate=True)
        return AESGCM(key.encode()).decrypt(nonce.encode(), sealed, associated_data.encode())
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise CryptoFailure("resource does not decrypt") from exc


def private_pem(key: rsa.RSAPrivateKey, *, pkcs1: bool = False) -> str:
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if pkcs1
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
