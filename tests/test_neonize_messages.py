"""What the neonize connector makes of WhatsApp's messages, receipts and contacts, and
what it sends, checked against neonize 0.5.2 itself.

Real: every event is a real neonize proto object (`neonize.proto`), shaped as
neonize's Go side encodes it (see the comments per case); the client is the real
`NewAClient`, constructed offline. Stands in: its Go bridge (the `.so` calls behind
`NewAClient`), which would need WhatsApp's servers; the stand-in answers with the real
return protos neonize decodes, and records what neonize passed down.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from neonize.aioze.client import NewAClient
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e
from neonize.utils.enum import ClientType
from neonize.utils.jid import build_jid

from runner.connectors import neonize_client
from runner.connectors.base import Recipient
from runner.connectors.neonize_inbound import (
    INBOUND_MEDIA_MAX,
    ack_chat,
    inbound_from,
    lids_to_resolve,
)
from runner.connectors.neonize_map import ack_status
from runner.connectors.neonize_ops import (
    check_number,
    contacts,
    document_type,
    media_for,
    send_text,
)

PHONE = "5511977776666"
LID = "204893015412345"
OWN = "5511999999999"


def jid(user: str, server: str = "s.whatsapp.net") -> pb.JID:
    return build_jid(user, server)


def wire(msg: Any) -> bytes:
    """``msg`` as neonize's Go side sends it: proto2, every required field set (Go's
    proto.Marshal refuses a message without them), zero values where a test has none."""
    for field in msg.DESCRIPTOR.fields:
        if field.is_required and not msg.HasField(field.name):
            if field.message_type is not None:
                getattr(msg, field.name).SetInParent()
            else:
                setattr(msg, field.name, field.default_value)
        if field.message_type is not None and field.is_repeated:
            for item in getattr(msg, field.name):
                wire(item)
        elif field.message_type is not None and msg.HasField(field.name):
            wire(getattr(msg, field.name))
    return bytes(msg.SerializeToString())


def lid_source(*, alt: bool = True) -> pb.MessageSource:
    """A 1:1 chat with a contact addressed by LID, as whatsmeow's parseMessageSource
    builds it: chat and sender are the LID, the number only in SenderAlt (sender_pn)."""
    return pb.MessageSource(
        Chat=jid(LID, "lid"),
        Sender=jid(LID, "lid"),
        SenderAlt=jid(PHONE) if alt else pb.JID(),
        IsFromMe=False,
        IsGroup=False,
    )


def message(source: pb.MessageSource, **info: Any) -> pb.Message:
    fields = {"ID": "3EB0AA", "Type": "text", "Pushname": "Maria", "Timestamp": 1739202900123}
    return pb.Message(Info=pb.MessageInfo(MessageSource=source, **(fields | info)))


def test_a_lid_chat_reports_the_phone_number_and_seconds() -> None:
    event = message(lid_source())
    event.Message.conversation = "Olá"
    got = inbound_from(event, OWN)
    assert got is not None
    assert got.to_json() == {
        "id": "3EB0AA",
        "from": f"{PHONE}@c.us",
        "to": f"{OWN}@c.us",
        "body": "Olá",
        "type": "chat",
        "timestamp": 1739202900,  # neonize 0.5.2 sends UnixMilli
        "isGroupMsg": False,
        "sender": {"name": "Maria", "phone": PHONE},
    }
    assert lids_to_resolve(event.Info.MessageSource) == []

    # no sender_pn: the connector looks the LID up in whatsmeow's store first...
    bare = message(lid_source(alt=False))
    bare.Message.conversation = "Olá"
    assert [j.User for j in lids_to_resolve(bare.Info.MessageSource)] == [LID, LID]
    found = inbound_from(bare, OWN, {LID: PHONE})
    assert found is not None and found.chat == f"{PHONE}@c.us" and found.sender == PHONE
    # ...and without an answer says so rather than inventing a number from the LID
    unknown = inbound_from(bare, OWN)
    assert unknown is not None and unknown.chat == f"{LID}@lid" and unknown.sender == ""
    with pytest.raises(Exception, match="unknown chat server"):
        Recipient.parse(unknown.chat)  # a reply to it is refused, not misaddressed


def test_group_messages_take_the_participants_number() -> None:
    source = pb.MessageSource(
        Chat=jid("120363025246125244", "g.us"),
        Sender=jid(LID, "lid"),
        SenderAlt=jid(PHONE),  # participant_pn in a LID-addressed group
        IsGroup=True,
    )
    event = message(source)
    event.Message.extendedTextMessage.text = "oi https://example.com"
    event.Info.MediaType = "url"  # whatsmeow's type for a text with a link preview
    got = inbound_from(event, OWN)
    assert got is not None
    assert (got.chat, got.sender, got.type, got.is_group) == (
        "120363025246125244@g.us",
        PHONE,
        "chat",
        True,
    )
    assert got.body == "oi https://example.com"
    assert lids_to_resolve(source) == []


def test_reactions_edits_and_deletions_have_their_own_kinds() -> None:
    key = MessageKey(ID="3EB0TARGET", fromMe=True)
    reaction = message(lid_source(), Type="reaction")
    reaction.Message.reactionMessage.CopyFrom(e2e.ReactionMessage(key=key, text="👍"))
    got = inbound_from(reaction, OWN)
    assert got is not None
    assert (got.type, got.body, got.to_json()["targetId"]) == ("reaction", "👍", "3EB0TARGET")

    # whatsmeow unwraps an edit to the protocolMessage holding the new content
    edit = message(lid_source(), Edit="1")
    edit.IsEdit = True
    edit.Message.protocolMessage.CopyFrom(
        e2e.ProtocolMessage(
            key=key,
            type=e2e.ProtocolMessage.MESSAGE_EDIT,
            editedMessage=e2e.Message(conversation="corrigido"),
        )
    )
    got = inbound_from(edit, OWN)
    assert got is not None and (got.type, got.body, got.target_id) == (
        "edited",
        "corrigido",
        "3EB0TARGET",
    )

    revoke = message(lid_source(), Edit="7")
    revoke.Message.protocolMessage.CopyFrom(
        e2e.ProtocolMessage(key=key, type=e2e.ProtocolMessage.REVOKE)
    )
    got = inbound_from(revoke, OWN)
    assert got is not None and (got.type, got.body, got.target_id) == ("revoked", "", "3EB0TARGET")

    # protocol traffic that is no message, and a bare key distribution: nothing
    setting = message(lid_source())
    setting.Message.protocolMessage.type = e2e.ProtocolMessage.EPHEMERAL_SETTING
    assert inbound_from(setting, OWN) is None
    skdm = message(source=pb.MessageSource(Chat=jid("1203630252461", "g.us"), IsGroup=True))
    skdm.Message.senderKeyDistributionMessage.groupID = "1203630252461@g.us"
    assert inbound_from(skdm, OWN) is None
    status = message(pb.MessageSource(Chat=jid("status", "broadcast"), Sender=jid(PHONE)))
    status.Message.conversation = "my status"
    assert inbound_from(status, OWN) is None


def test_receipts_map_as_neonize_052_encodes_them() -> None:
    chat = jid(PHONE)
    source = pb.MessageSource(Chat=chat, Sender=chat)
    read = pb.Receipt(MessageSource=source, MessageIDs=["A", "B"], Type=pb.Receipt.READ)
    assert ack_status(read) == "read"
    assert ack_status(pb.Receipt(MessageSource=source, Type=pb.Receipt.DELIVERED)) == "delivered"
    assert ack_status(pb.Receipt(MessageSource=source, Type=pb.Receipt.RETRY)) is None
    # "server-error" has no case in neonize's EncodeReceipts: Type stays unset
    assert ack_status(pb.Receipt(MessageSource=source, MessageIDs=["A"])) == "failed"
    # "played-self" is encoded as SERVER_ERROR: our own device, no ack
    assert ack_status(pb.Receipt(MessageSource=source, Type=pb.Receipt.SERVER_ERROR)) is None
    mine = pb.Receipt(MessageSource=pb.MessageSource(Chat=chat, IsFromMe=True))
    assert ack_status(mine) is None

    assert ack_chat(read, {}) == f"{PHONE}@c.us"
    by_lid = pb.Receipt(MessageSource=lid_source(), Type=pb.Receipt.READ)
    assert ack_chat(by_lid, {}) == f"{PHONE}@c.us"
    no_alt = pb.Receipt(MessageSource=lid_source(alt=False), Type=pb.Receipt.READ)
    assert [j.User for j in lids_to_resolve(no_alt.MessageSource, sender=False)] == [LID]
    assert ack_chat(no_alt, {LID: PHONE}) == f"{PHONE}@c.us"
    assert ack_chat(no_alt, {}) == f"{LID}@lid"


class FakeGo:
    """Stands in for neonize's Go bridge: records calls, answers with real protos."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any) -> Any:
            self.calls.append((name, args))
            answer = self.answers[name]
            return answer(*args) if callable(answer) else answer

        return call


def real_client(go: FakeGo) -> NewAClient:
    client = NewAClient("unused.db", uuid="offline")
    client._NewAClient__client = go
    client.contact._ContactStore__client = go
    return client


def test_text_is_sent_as_plain_conversation() -> None:
    answer = pb.SendMessageReturnFunction(SendResponse=pb.SendResponse(ID="3EB0SENT"))
    go = FakeGo(SendMessage=wire(answer))
    text = "@0 e @5511988887777, veja https://example.com"
    sent = asyncio.run(send_text(real_client(go), Recipient(PHONE), text))
    assert sent == "3EB0SENT"
    ((_, args),) = go.calls
    to = pb.JID.FromString(args[1])
    assert (to.User, to.Server) == (PHONE, "s.whatsapp.net")
    msg = e2e.Message.FromString(args[3])
    assert msg.conversation == text
    assert not msg.HasField("extendedTextMessage"), "no mentions, no link preview"


def test_check_number_asks_with_plus_and_nothing_found_is_invalid() -> None:
    none = pb.IsOnWhatsAppReturnFunction(Error="Function returned nothing.")
    go = FakeGo(IsOnWhatsApp=wire(none))
    got = asyncio.run(check_number(real_client(go), Recipient(PHONE)))
    assert got == {"phone": PHONE, "valid": False, "canReceiveMessage": False, "isBusiness": False}
    assert go.calls[0][1][1] == f"+{PHONE}".encode()

    hit = pb.IsOnWhatsAppReturnFunction(
        IsOnWhatsAppResponse=[pb.IsOnWhatsAppResponse(Query=f"+{PHONE}", JID=jid(PHONE), IsIn=True)]
    )
    go = FakeGo(IsOnWhatsApp=wire(hit))
    assert asyncio.run(check_number(real_client(go), Recipient(PHONE)))["valid"] is True

    broken = pb.IsOnWhatsAppReturnFunction(Error="websocket not connected")
    go = FakeGo(IsOnWhatsApp=wire(broken))
    with pytest.raises(Exception, match="WhatsApp did not answer: websocket not connected"):
        asyncio.run(check_number(real_client(go), Recipient(PHONE)))


def test_contacts_by_lid_are_reported_by_number_once() -> None:
    other_lid = "99887766554433"
    found = pb.ContactsGetAllContactsReturnFunction(
        Contact=[
            pb.Contact(JID=jid(PHONE), Info=pb.ContactInfo(Found=True, PushName="Mari")),
            pb.Contact(JID=jid(LID, "lid"), Info=pb.ContactInfo(Found=True, FullName="Maria")),
            pb.Contact(JID=jid(other_lid, "lid"), Info=pb.ContactInfo(FullName="Hidden")),
        ]
    )

    def pn_for(_uuid: bytes, buf: bytes, _size: int) -> bytes:
        asked = pb.JID.FromString(buf)
        if asked.User == LID:
            return wire(pb.GetJIDFromStoreReturnFunction(Jid=jid(PHONE)))
        return wire(pb.GetJIDFromStoreReturnFunction(Error="no mapping"))

    go = FakeGo(GetAllContacts=wire(found), GetPNFromLID=pn_for)
    got = asyncio.run(contacts(real_client(go)))
    assert got == [
        {
            "id": f"{PHONE}@c.us",
            "phone": PHONE,
            "name": "Maria",
            "pushname": "",
            "isBusiness": False,
        }
    ], "the LID's entry has the name; the unknown LID is left out"


def test_inbound_media_is_delivered_when_small_and_described_when_not() -> None:
    image = e2e.Message(
        imageMessage=e2e.ImageMessage(mimetype="image/jpeg", fileLength=4, caption="foto")
    )
    go = FakeGo(DownloadAny=wire(pb.DownloadReturnFunction(Binary=b"\xff\xd8\xff\xe0")))
    got = asyncio.run(media_for(real_client(go), image, live=True))
    assert got == {
        "mimetype": "image/jpeg",
        "size": 4,
        "fileName": "",
        "data": "data:image/jpeg;base64,/9j/4A==",
    }
    big = e2e.Message(
        documentMessage=e2e.DocumentMessage(
            mimetype="application/pdf", fileLength=INBOUND_MEDIA_MAX + 1, fileName="a.pdf"
        )
    )
    got = asyncio.run(media_for(real_client(FakeGo()), big, live=True))
    assert got is not None and got["data"] is None and got["fileName"] == "a.pdf"
    assert got["omitted"] == "larger than 4 MB"
    failed = FakeGo(DownloadAny=wire(pb.DownloadReturnFunction(Error="media expired")))
    got = asyncio.run(media_for(real_client(failed), image, live=True))
    assert got is not None and got["omitted"] == "download failed: media expired"
    gone = asyncio.run(media_for(real_client(FakeGo()), image, live=False))
    assert gone is not None and "connection closed" in gone["omitted"]
    assert (
        asyncio.run(media_for(real_client(FakeGo()), e2e.Message(conversation="x"), live=True))
        is None
    )


def test_pairing_presents_itself_as_chrome_on_linux() -> None:
    """Built by the connector's own construction function (DESKTOP device props), so
    neonize would otherwise derive "Electron (Linux)" from the platform."""
    code = wire(pb.PairPhoneReturnFunction(Code="ABCD-EFGH"))
    go = FakeGo(PairPhone=code)
    client = neonize_client.new_client("unused.db", "offline", "s1")
    client._NewAClient__client = go
    assert asyncio.run(neonize_client.pair_phone(client, PHONE)) == "ABCD-EFGH"
    params = pb.PairPhoneParams.FromString(go.calls[0][1][1])
    assert params.clientDisplayName == neonize_client.PAIR_DISPLAY == "Chrome (Linux)"
    assert params.clientType == ClientType.CHROME.value and params.phone == PHONE
    assert params.showPushNotification


def test_a_document_without_a_declared_type_is_typed_by_its_name() -> None:
    assert document_type("", "contrato.pdf") == "application/pdf"
    assert document_type("application/octet-stream", "planilha.csv") == "text/csv"
    assert document_type("", "LEIAME") == "application/octet-stream"
    assert document_type("text/plain", "notas.pdf") == "text/plain", "declared wins"
