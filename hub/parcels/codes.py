"""Reissuing a pickup code: an operator replaces the code of a deposited parcel (audited).

The old code stops working (its hash is replaced, in the store and in the cabinet's desired
state), the cabinet also gets the new hash as a SetPickupCode command like after the deposit, and
the recipient gets a ``reissued`` notice through the notice outbox. Pending notices still holding
the old code are superseded (never sent; their code erased).
"""

from __future__ import annotations

from hub.devices import desired
from hub.devices.commands import CommandService
from hub.devices.desired import DesiredStates
from hub.errors import FailedPrecondition, NotFound
from hub.models import ParcelState, Transition
from hub.parcels.notify import PickupNotice
from hub.parcels.outbox import NoticeOutbox
from hub.parcels.pickup import issue_code
from hub.settings import PickupSettings
from hub.store import Store
from hub.store.repo import notices as notices_repo
from hub.store.repo import parcels as parcels_repo
from lockerhub.clock import Clock
from lockerhub.v1 import device_pb2


class CodeReissuer:
    """The one way to replace a pickup code."""

    def __init__(
        self,
        store: Store,
        commands: CommandService,
        outbox: NoticeOutbox,
        clock: Clock,
        pickup: PickupSettings,
        *,
        desired_states: DesiredStates,
    ) -> None:
        self._store = store
        self._commands = commands
        self._outbox = outbox
        self._clock = clock
        self._pickup = pickup
        self._desired = desired_states

    async def reissue(self, parcel_id: str, *, reason: str, actor: str) -> None:
        """Replace the pickup code of a deposited parcel.

        Raises:
            NotFound: unknown parcel.
            FailedPrecondition: the parcel is not deposited (no code to replace).
        """
        code = await issue_code(self._pickup)  # PBKDF2 off the loop, before the transaction
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            parcel = await parcels_repo.get_parcel(tx, parcel_id, history=False)
            if parcel is None:
                raise NotFound(f"parcel {parcel_id!r} not found")
            if parcel.state != ParcelState.DEPOSITED:
                raise FailedPrecondition(
                    f"parcel {parcel_id} is {parcel.state}: only a deposited parcel has a code"
                )
            deadline = parcel.pickup_deadline_ms
            await parcels_repo.store_code_hash(
                tx, parcel_id, code.code_hash, issued_ms=now, deadline_ms=deadline
            )
            await desired.mark(tx, parcel.cabinet_id, now)
            pending = await self._commands.create(
                tx,
                device_id=parcel.cabinet_id,
                site=parcel.site,
                command=device_pb2.Command(
                    set_pickup_code=device_pb2.SetPickupCode(
                        parcel_id=parcel_id,
                        compartment_id=parcel.compartment_id,
                        code_hash=code.code_hash,
                        deadline_ms=deadline,
                    )
                ),
                ttl_ms=max(1, deadline - now),
                actor=actor,
            )
            await notices_repo.supersede(tx, parcel_id)
            notice = PickupNotice(
                parcel_id,
                "",
                code.code,
                parcel.site,
                parcel.cabinet_id,
                parcel.compartment_id,
                deadline,
                kind="reissued",
            )
            await self._outbox.add(tx, notice, now)
            # The audit record: who, when, why (the state itself does not change).
            location = f"{parcel.site}/{parcel.cabinet_id}/{parcel.compartment_id}"
            await parcels_repo.add_transition(
                tx,
                parcel_id,
                Transition(ParcelState.DEPOSITED, now, actor, location),
                detail=f"pickup code reissued: {reason}",
            )
        self._desired.wake()
        self._outbox.wake()
        await self._commands.publish(pending)
