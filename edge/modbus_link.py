"""One pymodbus TCP client shared by the Modbus drivers (cabinet boards, sorting line).

It connects, serialises requests (one at a time on the line), reads the energy meter both kinds of
controller carry, and turns pymodbus errors into DriverError: here and nowhere else.

pymodbus waits for a response with ``asyncio.wait_for``, which on Python 3.11 can lose a cancel
(``lockerhub.supervise.keep_cancel``): the cancelled poller would poll on and the agent would never
stop on SIGTERM.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.errors import DriverError
from lockerhub.driver import MeterReading
from lockerhub.supervise import keep_cancel


class ModbusLink:
    """A Modbus TCP connection to one gateway; ``connect`` before ``call``, ``close`` after."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self._host = host
        self._port = port
        self._timeout_s = timeout_s
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Open the connection.

        Raises:
            DriverError: the gateway cannot be reached.
        """
        client = AsyncModbusTcpClient(
            self._host, port=self._port, timeout=self._timeout_s, retries=1
        )
        try:
            connected = await keep_cancel(client.connect())
        except asyncio.CancelledError:
            client.close()  # it may have connected before the cancel came back
            raise
        except (ModbusException, OSError) as exc:
            raise DriverError(f"modbus {self._host}:{self._port}: {exc}") from exc
        if not connected:
            client.close()
            raise DriverError(f"cannot reach the modbus gateway {self._host}:{self._port}")
        self._client = client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One request (``method`` of pymodbus' client); its response, never an error response.

        Raises:
            DriverError: not connected, the request failed, or the device answered an error.
        """
        if self._client is None:
            raise DriverError("modbus driver is not entered")
        try:
            async with self._lock:  # one request at a time on the line
                response = await keep_cancel(getattr(self._client, method)(*args, **kwargs))
        except (ModbusException, OSError, TimeoutError) as exc:
            raise DriverError(f"modbus {method} failed: {exc}") from exc
        if response.isError():
            raise DriverError(f"modbus {method} on device {kwargs.get('device_id')}: {response}")
        return response

    async def read_meter(self, unit: int) -> MeterReading:
        """The energy meter at ``unit``: input registers 0-1 energy (0.1 Wh), 2-3 power (0.1 W),
        uint32, high word first (docs/edge.md)."""
        response = await self.call("read_input_registers", 0, count=4, device_id=unit)
        r = [int(v) for v in response.registers]
        return MeterReading(
            energy_wh=((r[0] << 16) | r[1]) / 10, power_w=((r[2] << 16) | r[3]) / 10
        )
