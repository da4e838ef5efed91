"""Making neonize's client, and the few neonize helpers the connector shares.

`new_client` is the one place a NewAClient is built: a store (whatsmeow's SQLite file
in `tokens/<name>/`, or its PostgreSQL store and a device JID, see neonize_store.py) is
chosen here.
"""

from __future__ import annotations

import logging
from typing import Any

from runner.connectors.base import Recipient
from runner.connectors.neonize_store import ClientStore

PAIR_DISPLAY = "Chrome (Linux)"
"""How a pairing-code login presents itself on the phone. whatsmeow accepts only
common `Browser (OS)` names; neonize builds this one from ClientType.CHROME."""


def quiet_neonize_logging() -> None:
    """whatsmeow's debug chatter and neonize's ffmpeg warning (we send no media that
    needs ffmpeg) stay out of the log; its INFO and above stay in."""
    logging.getLogger("whatsmeow").setLevel(logging.INFO)
    logging.getLogger("neonize.utils.log").setLevel(logging.INFO)
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)


def new_client(db: str, uuid: str, session: str, where: ClientStore | None = None) -> Any:
    """A neonize client on the store ``db``, listed on the phone as "zapvisor <name>".

    ``uuid`` names this client generation inside neonize's Go side (its registry of
    clients is keyed by it), so an old generation's late calls never reach a new one.
    ``where``: the store and device to open when the auth lives in the shared store
    (neonize_store.client_store: always with the session's own device JID, or
    ``new_device`` to pair); None for the session's own SQLite file ``db``."""
    from neonize.aioze.client import NewAClient
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

    where = where or ClientStore(db)
    props = DeviceProps(os=f"zapvisor {session}", platformType=DeviceProps.DESKTOP)
    return NewAClient(where.name, props=props, uuid=uuid, **where.kwargs())


async def pair_phone(client: Any, phone: str) -> str:
    """Ask for a pairing code for ``phone`` (digits), presented as ``PAIR_DISPLAY``:
    without ``client_type`` neonize derives it from the device's DESKTOP platform and
    sends "Electron (Linux)", which WhatsApp does not list."""
    from neonize.utils.enum import ClientName, ClientType

    code: str = await client.PairPhone(
        phone, True, client_name=ClientName.LINUX, client_type=ClientType.CHROME
    )
    return code


def jid(to: Recipient) -> Any:
    from neonize.utils.jid import build_jid

    return build_jid(to.user, "g.us" if to.group else "s.whatsapp.net")


def lid_jid(user: str) -> Any:
    from neonize.utils.jid import build_jid

    return build_jid(user, "lid")
