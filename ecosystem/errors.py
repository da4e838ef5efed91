"""One exception hierarchy; every message is a sentence an operator can act on."""

from __future__ import annotations


class ZapvisorError(Exception):
    """Base of every error zapvisor reports to a person.

    ``exit_code`` is what the headless CLI exits with when this error ends a command.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ZapvisorError):
    """A setting (environment variable or `.env` entry) is unknown or invalid."""

    exit_code = 78  # EX_CONFIG


class InvalidName(ZapvisorError):
    """A session name breaks the naming rule."""

    exit_code = 65  # EX_DATAERR


class InvalidValue(ZapvisorError):
    """A field value (JSON config, URL, description) is not acceptable."""

    exit_code = 65


class SessionExists(ZapvisorError):
    """A session with that name already exists."""

    exit_code = 73  # EX_CANTCREAT


class SessionNotFound(ZapvisorError):
    """No session has that name."""

    exit_code = 66  # EX_NOINPUT


class CapacityError(ZapvisorError):
    """MAX_SESSIONS is reached or no port in the range is free."""

    exit_code = 75  # EX_TEMPFAIL


class PortsExhausted(CapacityError):
    """Every port in the range is held by a session or bound by another process."""

    def __init__(self, message: str, busy: list[int] | None = None) -> None:
        super().__init__(message)
        self.busy = busy or []


class NotPossibleNow(ZapvisorError):
    """The session cannot do that in its current state (its runner answered 409: e.g.
    a scan while it is connected, a pairing code while it is not showing a QR)."""

    exit_code = 75  # EX_TEMPFAIL


class StoreError(ZapvisorError):
    """The session store cannot be reached or refused an operation."""

    exit_code = 69  # EX_UNAVAILABLE


class SchemaMissing(StoreError):
    """The store's database has no zapvisor schema, or an older one than this code needs
    (`zapvisor db migrate`)."""


class StoreUnsupported(ZapvisorError):
    """The store in use does not keep this (a store of its own kind written elsewhere,
    or a contract method it has not implemented): the caller turns the feature off or
    falls back. Every store zapvisor ships keeps everything; a database whose schema
    predates a feature says SchemaMissing instead. Not an outage: nothing to retry."""

    exit_code = 69

    def __init__(self, kind: str, what: str) -> None:
        super().__init__(f"the {kind} store {what}")


class SupervisorError(ZapvisorError):
    """supervisord cannot be reached, started, or refused an operation."""

    exit_code = 69


class StateDirError(ZapvisorError):
    """The state directory (ZAPVISOR_HOME) cannot be created or written."""

    exit_code = 73


class RunnerError(ZapvisorError):
    """A session's runner did not answer, or answered with an error."""

    exit_code = 69


class Aborted(ZapvisorError):
    """The operator declined a confirmation, or one was needed without a terminal."""

    exit_code = 2


# -- fleet: hosts reached over SSH -----------------------------------------------------


class HostNotFound(ZapvisorError):
    """No host of the fleet has that name."""

    exit_code = 66


class HostExists(ZapvisorError):
    """A host with that name is already in the fleet (or is this machine)."""

    exit_code = 73


class HostBusy(ZapvisorError):
    """The host still holds sessions, so it cannot leave the fleet."""

    exit_code = 75


class HostError(ZapvisorError):
    """A host of the fleet cannot be reached over SSH, or cannot run zapvisor."""

    exit_code = 69


class HostUnreachable(HostError):
    """A host of the fleet did not answer in time, or its link dropped: DNS, a refused
    or silent port, a lost connection."""


class HostAuthRefused(HostError):
    """sshd refused every key offered (identity file, ssh-agent, default keys)."""

    exit_code = 77  # EX_NOPERM


class HostKeyRejected(HostError):
    """The host's SSH key is not the one trusted (changed), or was never trusted here."""

    exit_code = 77


class RemoteZapvisorError(HostError):
    """zapvisor is missing on the host, is another version, or could not be installed."""


class VersionSkew(ZapvisorError):
    """A host runs a zapvisor whose protocol, or this action's revision, differs."""

    exit_code = 69


class ProtocolError(ZapvisorError):
    """The other end of a host link said something that is not zapvisor's protocol."""

    exit_code = 69


class RemoteError(ZapvisorError):
    """An error of a kind this zapvisor does not know, raised on another host."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- failover (ecosystem/lease.py) --------------------------------------------------------


class LeaseLost(ZapvisorError):
    """A runner's lease has another holder or a newer epoch: the store refused its write
    or its renewal (the fence), and it must stop without reconnecting. Never retried,
    unlike a StoreError."""

    exit_code = 75

    def __init__(self, message: str, holder: str | None = None, epoch: int | None = None):
        super().__init__(message)
        self.holder = holder
        self.epoch = epoch


class LeaseHeld(ZapvisorError):
    """Another host holds the session's lease, or a planned move is under way."""

    exit_code = 75


class NotThisHost(ZapvisorError):
    """The session runs on another host (it failed over or was moved there)."""

    exit_code = 69

    def __init__(self, message: str, host: str = "") -> None:
        super().__init__(message)
        self.host = host


class HostUnavailable(ZapvisorError):
    """Another host cannot take a session: no fresh heartbeat in the store, or unknown.

    Not HostUnreachable: that one says the host a call went to did not answer (and the
    link to it is dropped); this one is an answer, about a third host."""

    exit_code = 69


class CannotMove(ZapvisorError):
    """A session cannot move: its auth is in local files, it is already there, or a
    move is under way."""

    exit_code = 65
