"""neonize's messages and receipts as the seed's webhook payloads, without a client.

Pure: what needs whatsmeow's store (a phone number behind a LID) is looked up by the
connector first and passed in as ``phones``; the tests feed real neonize proto objects.

Facts of neonize 0.5.2 / whatsmeow this follows:
- a 1:1 chat with a contact WhatsApp addresses by LID (its hidden id, server ``lid``)
  has the LID as chat and sender, and the phone number only in ``SenderAlt``
  (``sender_pn``); in groups the participant's number is in ``SenderAlt`` too;
- ``MessageInfo.Timestamp`` is in milliseconds (Go's ``UnixMilli``);
- whatsmeow unwraps edits (``IsEdit``, a ``protocolMessage`` MESSAGE_EDIT holding the
  new content), deletions (a ``protocolMessage`` REVOKE) and reactions
  (``reactionMessage``) but they arrive as messages like any other;
- ``MediaType`` is ``url`` for a text whose sender's app attached a link preview.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.connectors.base import Inbound, Recipient

PHONE_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
MEDIA_FIELDS = (
    "imageMessage",
    "videoMessage",
    "audioMessage",
    "documentMessage",
    "stickerMessage",
)
INBOUND_MEDIA_MAX = 4 * 1024 * 1024
"""Media up to this size is downloaded and put in the webhook (base64): a webhook row
and POST stay bounded; anything bigger is described, with ``omitted`` saying why."""
_NOT_CONTENT = frozenset({"messageContextInfo", "senderKeyDistributionMessage"})
_KINDS = {"text": "chat", "url": "chat"}


def lids_to_resolve(source: Any, *, sender: bool = True) -> list[Any]:
    """The LID JIDs of a MessageSource (its chat, and its sender unless ``sender`` is
    False) whose phone number is not in the event itself."""
    out = []
    for jid in (source.Chat, source.Sender) if sender else (source.Chat,):
        if jid.Server == LID_SERVER and phone_in_event(jid, source) is None:
            out.append(jid)
    return out


def phone_in_event(jid: Any, source: Any) -> str | None:
    """The phone number (digits) behind ``jid`` as far as the event says."""
    if jid.Server != LID_SERVER:
        return jid.User or None
    alt = source.SenderAlt  # the sender's number; a 1:1 chat's LID is its sender's
    if alt.Server == PHONE_SERVER and alt.User and jid.User == source.Sender.User:
        return str(alt.User)
    return None


def chat_id(jid: Any, source: Any, phones: Mapping[str, str]) -> str:
    """The chat in the API's form: ``<phone>@c.us``, ``<id>@g.us``, or ``<lid>@lid``
    when no number is known (a reply to it is refused rather than sent to a made-up
    number)."""
    if jid.Server == "g.us":
        return Recipient(jid.User, group=True).jid
    phone = phone_in_event(jid, source) or phones.get(jid.User)
    if phone:
        return Recipient(phone).jid
    return f"{jid.User}@{jid.Server}"


def ack_chat(receipt: Any, phones: Mapping[str, str]) -> str:
    """A receipt's ``to``: the chat of the acknowledged message."""
    source = receipt.MessageSource
    return chat_id(source.Chat, source, phones)


def inbound_from(
    event: Any,
    own_phone: str,
    phones: Mapping[str, str] | None = None,
    media: dict[str, Any] | None = None,
) -> Inbound | None:
    """A neonize MessageEv as the seed's `message_received` message; None for our own
    messages, status updates, newsletters, broadcasts, and protocol traffic that is no
    message (key shares, ephemeral settings, history sync notices).

    ``phones`` maps LID users to phone numbers the connector looked up; ``media`` is
    what the connector made of the attachment (see :func:`media_info`)."""
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ProtocolMessage
    from neonize.utils.message import extract_text

    phones = phones or {}
    info = event.Info
    source = info.MessageSource
    chat = source.Chat
    if source.IsFromMe or chat.Server in ("broadcast", "newsletter", "bot"):
        return None
    message = event.Message
    body = extract_text(message)
    kind = _KINDS.get(info.MediaType or info.Type, info.MediaType or info.Type or "chat")
    target = ""
    if message.HasField("reactionMessage"):
        reaction = message.reactionMessage
        kind, body, target = "reaction", reaction.text, reaction.key.ID
    elif message.HasField("protocolMessage"):
        proto = message.protocolMessage
        if proto.type == ProtocolMessage.MESSAGE_EDIT:
            kind, body, target = "edited", extract_text(proto.editedMessage), proto.key.ID
        elif proto.type == ProtocolMessage.REVOKE and proto.key.ID:
            kind, body, target = "revoked", "", proto.key.ID
        else:
            return None
    elif not any(f.name not in _NOT_CONTENT for f, _ in message.ListFields()):
        return None  # a bare key distribution or context: nothing to tell
    sender = phone_in_event(source.Sender, source) or phones.get(source.Sender.User, "")
    return Inbound(
        id=info.ID,
        sender=sender,
        chat=chat_id(chat, source, phones),
        to=Recipient(own_phone).jid if own_phone else "",
        body=body,
        type=kind,
        timestamp=int(info.Timestamp) // 1000,
        is_group=source.IsGroup,
        sender_name=info.Pushname,
        target_id=target,
        media=media,
    )


def media_of(message: Any) -> tuple[str, Any] | None:
    """(field name, sub-message) of the downloadable attachment, if any."""
    for name in MEDIA_FIELDS:
        if message.HasField(name):
            return name, getattr(message, name)
    return None


def media_info(message: Any) -> dict[str, Any] | None:
    """The webhook's ``media`` object without the data: ``mimetype``, ``size``,
    ``fileName`` (documents) and ``data: null``; the connector fills ``data`` or says
    in ``omitted`` why not."""
    found = media_of(message)
    if found is None:
        return None
    name, sub = found
    size = int(sub.fileLength)
    info: dict[str, Any] = {
        "mimetype": sub.mimetype or "application/octet-stream",
        "size": size,
        "fileName": sub.fileName if name == "documentMessage" else "",
        "data": None,
    }
    if size > INBOUND_MEDIA_MAX:
        info["omitted"] = f"larger than {INBOUND_MEDIA_MAX // (1024 * 1024)} MB"
    return info


def contact_phone(jid: Any, phones: Mapping[str, str]) -> str | None:
    """A contact's phone number, or None when WhatsApp only gave its LID."""
    if jid.Server == LID_SERVER:
        return phones.get(jid.User)
    if jid.Server == PHONE_SERVER and jid.User:
        return str(jid.User)
    return None
