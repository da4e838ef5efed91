"""What the simulated phone shows and derives, all deterministic: the QR payload of
each rotation (shaped like WhatsApp's, 265 characters), the phone number a session
pairs with, and the 8-character code of a pairing by number."""

from __future__ import annotations

import base64
import hashlib


def sim_payload(session: str, seq: int) -> str:
    def b64(label: str, size: int) -> str:
        out = b""
        i = 0
        while len(out) < size:
            out += hashlib.sha256(f"{session}:{seq}:{label}:{i}".encode()).digest()
            i += 1
        return base64.b64encode(out[:size]).decode("ascii")

    return f"2@{b64('ref', 96)},{b64('noise', 32)},{b64('identity', 32)},{b64('adv', 32)}"


def sim_phone(session: str) -> str:
    digits = str(int(hashlib.sha256(session.encode()).hexdigest(), 16))
    return "5511" + digits[:9]


def sim_pair_code(session: str, phone: str) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTVWXYZ23456789"
    digest = hashlib.sha256(f"{session}:{phone}".encode()).digest()
    code = "".join(alphabet[b % len(alphabet)] for b in digest[:8])
    return f"{code[:4]}-{code[4:]}"
