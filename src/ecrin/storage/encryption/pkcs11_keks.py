"""KEKs inside a PKCS#11 token (an HSM, a smart card, SoftHSM2 for tests).

Each KEK is a non-extractable, sensitive AES-256 secret key stored in the token under a
label equal to its id. Data keys are wrapped and unwrapped by the token itself with
CKM_AES_KEY_WRAP_PAD (RFC 5649): the KEK's value never reaches this process. A data key
to wrap is imported as a short-lived session object; an unwrapped one is created as a
session object whose value is read back, then destroyed.

PKCS#11 calls block, so they run in a worker thread, one at a time on one logged-in
session. A token that disappears (unplugged, HSM restarted) is reopened once; if that
fails, the operation raises KeyUnavailable with the reason and no content is served.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.types import UnwrapMixin, WrapMixin

from ecrin.core.errors import Conflict, KeyUnavailable, StorageError
from ecrin.storage.encryption.format import check_kek_id

log = logging.getLogger(__name__)

T = TypeVar("T")

WRAP_MECHANISM = Mechanism.AES_KEY_WRAP_PAD
KEK_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.MODIFIABLE: False,
    Attribute.WRAP: True,
    Attribute.UNWRAP: True,
    Attribute.ENCRYPT: False,
    Attribute.DECRYPT: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}
_GONE = (
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
)


class Pkcs11Keys:
    def __init__(
        self, module: str, token_label: str, *, pin: str = "", pin_file: Path | None = None
    ) -> None:
        self.module = module
        self.token_label = token_label
        self._pin = pin
        self._pin_file = pin_file
        self._lock = threading.Lock()
        self._session: pkcs11.Session | None = None

    @property
    def description(self) -> str:
        return f"PKCS#11 token {self.token_label!r} ({self.module})"

    async def open(self, *, first_start: bool) -> None:
        def connect() -> None:
            if self._session is None:  # opening twice must not leak a logged-in session
                self._connect()

        await asyncio.to_thread(self._locked, connect)

    async def close(self) -> None:
        await asyncio.to_thread(self._locked, self._disconnect)

    async def default_id(self) -> str:
        raise KeyUnavailable(
            "set `kek_id` to the label of the key-encryption key in the PKCS#11 token "
            "(create one with `ecrin keys new --id <label>`)"
        )

    async def ids(self) -> list[str]:
        def work(session: pkcs11.Session) -> list[str]:
            found = session.get_objects(
                {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
            )
            return sorted(str(key[Attribute.LABEL]) for key in found)

        return await self._call(work)

    async def wrap(self, kek_id: str, data_key: bytes) -> bytes:
        def work(session: pkcs11.Session) -> bytes:
            kek = self._kek(session, kek_id)
            assert isinstance(kek, WrapMixin)
            carried = session.create_object(
                {
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: KeyType.AES,
                    Attribute.VALUE: data_key,
                    Attribute.TOKEN: False,
                    Attribute.SENSITIVE: False,
                    Attribute.EXTRACTABLE: True,
                }
            )
            try:
                assert isinstance(carried, pkcs11.SecretKey)
                return bytes(kek.wrap_key(carried, mechanism=WRAP_MECHANISM))
            finally:
                carried.destroy()

        return await self._call(work)

    async def unwrap(self, kek_id: str, wrapped_key: bytes) -> bytes:
        def work(session: pkcs11.Session) -> bytes:
            kek = self._kek(session, kek_id)
            assert isinstance(kek, UnwrapMixin)
            try:
                key = kek.unwrap_key(
                    ObjectClass.SECRET_KEY,
                    KeyType.AES,
                    wrapped_key,
                    mechanism=WRAP_MECHANISM,
                    store=False,
                    template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
                )
            except (p11.WrappedKeyInvalid, p11.WrappedKeyLenRange, p11.EncryptedDataInvalid) as exc:
                raise StorageError(
                    f"a data key does not unwrap under key-encryption key {kek_id}: the key "
                    "record was altered"
                ) from exc
            try:
                return bytes(key[Attribute.VALUE])
            finally:
                key.destroy()

        return await self._call(work)

    async def create(self, kek_id: str) -> None:
        check_kek_id(kek_id)

        def work(session: pkcs11.Session) -> None:
            try:
                session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=kek_id)
            except p11.NoSuchKey:
                session.generate_key(
                    KeyType.AES,
                    256,
                    label=kek_id,
                    id=kek_id.encode("ascii"),
                    store=True,
                    template=KEK_TEMPLATE,
                )
                return
            raise Conflict(f"key-encryption key {kek_id} already exists in the token")

        await self._call(work)

    async def destroy(self, kek_id: str) -> None:
        def work(session: pkcs11.Session) -> None:
            self._kek(session, kek_id).destroy()

        await self._call(work)

    # --- the session ---------------------------------------------------------------------

    def _kek(self, session: pkcs11.Session, kek_id: str) -> pkcs11.SecretKey:
        try:
            key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=kek_id)
        except p11.NoSuchKey as exc:
            raise KeyUnavailable(
                f"key-encryption key {kek_id} is not in {self.description}: it was "
                "destroyed, or this is not the right token"
            ) from exc
        except p11.MultipleObjectsReturned as exc:
            raise KeyUnavailable(f"several keys are labelled {kek_id} in the token") from exc
        assert isinstance(key, pkcs11.SecretKey)
        return key

    async def _call(self, work: Callable[[pkcs11.Session], T]) -> T:
        def attempt() -> T:
            if self._session is None:
                self._connect()
            assert self._session is not None
            try:
                return work(self._session)
            except _GONE:
                log.warning("lost the session with %s; reconnecting", self.description)
                self._disconnect()
                self._connect()
                return work(self._session)

        try:
            return await asyncio.to_thread(self._locked, attempt)
        except p11.PKCS11Error as exc:
            raise KeyUnavailable(
                f"{self.description} failed: {type(exc).__name__} {exc}".rstrip()
            ) from exc

    def _locked(self, work: Callable[[], T]) -> T:
        with self._lock:
            return work()

    def _connect(self) -> None:
        if not self.module or not Path(self.module).is_file():
            raise KeyUnavailable(f"the PKCS#11 module {self.module!r} does not exist")
        try:
            library = pkcs11.lib(self.module)
            token = library.get_token(token_label=self.token_label)
            try:
                self._session = token.open(user_pin=self._read_pin(), rw=True)
            except p11.UserAlreadyLoggedIn:
                # PKCS#11 logins are per process: another session of ours is logged in.
                self._session = token.open(rw=True)
        except p11.NoSuchToken as exc:
            raise KeyUnavailable(
                f"no PKCS#11 token labelled {self.token_label!r} in {self.module}: is the "
                "HSM connected and the token initialised?"
            ) from exc
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as exc:
            raise KeyUnavailable(
                f"the PIN of the PKCS#11 token {self.token_label!r} was refused"
            ) from exc
        except p11.PinLocked as exc:
            raise KeyUnavailable(
                f"the PKCS#11 token {self.token_label!r} is locked (too many wrong PINs)"
            ) from exc
        except (p11.PKCS11Error, RuntimeError, OSError) as exc:
            raise KeyUnavailable(
                f"cannot open {self.description}: {type(exc).__name__} {exc}".rstrip()
            ) from exc

    def _read_pin(self) -> str:
        if self._pin:
            return self._pin
        if self._pin_file is None:
            raise KeyUnavailable("no PIN for the PKCS#11 token: set pkcs11_pin_file")
        try:
            return self._pin_file.read_text("utf-8").strip()
        except OSError as exc:
            raise KeyUnavailable(
                f"cannot read the PKCS#11 PIN file {self._pin_file}: {exc.strerror}"
            ) from exc

    def _disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except p11.PKCS11Error:
                log.debug("closing the PKCS#11 session failed", exc_info=True)
