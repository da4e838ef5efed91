"""What the API asks of a connected neonize client, and the look-ups events need.

Every function takes the client it may call: the connector decides that the client is
alive (its Go side still registered), these functions only talk to it.

Choices (README, "Connectors and states"):
- text goes out as a plain ``conversation``: no link preview (neonize would fetch the
  URLs from this host and upload a thumbnail) and no mentions (neonize turns any
  ``@`` followed by digits, even ``@0``, into one);
- a document's type is the one its server declared, else guessed from the file name,
  else ``application/octet-stream`` (never ``text/plain`` by default);
- check-number asks in international format (``+`` and digits), as whatsmeow requires.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import mimetypes
from collections.abc import Iterable
from typing import Any

from runner.connectors.base import Media, Recipient, UpstreamError
from runner.connectors.neonize_client import jid, lid_jid
from runner.connectors.neonize_inbound import INBOUND_MEDIA_MAX, contact_phone, media_info

log = logging.getLogger("runner.neonize")
NOTHING_FOUND = "Function returned nothing."
"""neonize's error when whatsmeow's IsOnWhatsApp answered with no entry."""
DOWNLOAD_TIMEOUT = 30.0


def short(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return (text or type(exc).__name__)[:300]


async def send_text(client: Any, to: Recipient, text: str) -> str:
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

    try:
        resp = await client.send_message(jid(to), Message(conversation=text))
    except Exception as exc:
        raise UpstreamError(f"WhatsApp did not take the message: {short(exc)}") from None
    return str(resp.ID)


def document_type(declared: str, file_name: str) -> str:
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(file_name)
    return guessed or "application/octet-stream"


async def send_media(client: Any, to: Recipient, media: Media, data: bytes, declared: str) -> str:
    try:
        if media.kind == "image":
            resp = await client.send_image(jid(to), data, caption=media.caption or None)
        else:
            resp = await client.send_document(
                jid(to),
                data,
                caption=media.caption or None,
                title=media.file_name,
                filename=media.file_name,
                mimetype=document_type(declared, media.file_name),
            )
    except Exception as exc:
        raise UpstreamError(f"WhatsApp did not take the {media.kind}: {short(exc)}") from None
    return str(resp.ID)


async def check_number(client: Any, who: Recipient) -> dict[str, Any]:
    from neonize.exc import IsOnWhatsAppError

    try:
        found = await client.is_on_whatsapp(f"+{who.user}")
    except IsOnWhatsAppError as exc:
        if str(exc) != NOTHING_FOUND:
            raise UpstreamError(f"WhatsApp did not answer: {short(exc)}") from None
        found = []
    except Exception as exc:
        raise UpstreamError(f"WhatsApp did not answer: {short(exc)}") from None
    hit = found[0] if found else None
    valid = bool(hit is not None and hit.IsIn)
    return {
        "phone": who.user,
        "valid": valid,
        "canReceiveMessage": valid,
        "isBusiness": bool(hit is not None and hit.HasField("VerifiedName")),
    }


async def phones_of(client: Any, lids: Iterable[str]) -> dict[str, str]:
    """LID user → phone number, from whatsmeow's store (unknown ones left out)."""
    out: dict[str, str] = {}
    for user in dict.fromkeys(lids):
        try:
            pn = await client.get_pn_from_lid(lid_jid(user))
        except Exception as exc:
            log.info("no number known for LID %s: %s", user, short(exc), extra={"event": "lid"})
            continue
        if pn.User:
            out[user] = str(pn.User)
    return out


async def contacts(client: Any) -> list[dict[str, Any]]:
    try:
        found = await client.contact.get_all_contacts()
    except Exception as exc:
        raise UpstreamError(f"cannot read contacts: {short(exc)}") from None
    phones = await phones_of(client, [c.JID.User for c in found if c.JID.Server == "lid"])
    out: dict[str, dict[str, Any]] = {}
    for contact in found:
        phone = contact_phone(contact.JID, phones)
        if phone is None:
            continue  # only a LID and no number for it: nothing to send to
        info = contact.Info
        entry = {
            "id": Recipient(phone).jid,
            "phone": phone,
            "name": info.FullName or info.FirstName,
            "pushname": info.PushName,
            "isBusiness": bool(info.BusinessName),
        }
        known = out.get(phone)
        # the same person under their number and their LID: keep the named entry
        if known is None or (not known["name"] and entry["name"]):
            out[phone] = entry
    return list(out.values())


async def media_for(client: Any, message: Any, *, live: bool) -> dict[str, Any] | None:
    """The webhook's ``media`` for ``message``: downloaded when small enough and the
    client is still ``live``, else with ``omitted`` saying why."""
    info = media_info(message)
    if info is None or "omitted" in info:
        return info
    if not live:
        return info | {"omitted": "the connection closed before it was downloaded"}
    try:
        data = await asyncio.wait_for(client.download_any(message), DOWNLOAD_TIMEOUT)
    except TimeoutError:
        return info | {"omitted": f"download took over {DOWNLOAD_TIMEOUT:g} s"}
    except Exception as exc:
        return info | {"omitted": f"download failed: {short(exc)}"}
    if len(data) > INBOUND_MEDIA_MAX:  # the declared size may be missing or wrong
        return info | {"size": len(data), "omitted": "larger than the limit"}
    encoded = base64.b64encode(data).decode("ascii")
    return info | {"size": len(data), "data": f"data:{info['mimetype']};base64,{encoded}"}
