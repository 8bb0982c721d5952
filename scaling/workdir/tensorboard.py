"""TensorBoard event files of a run's scalars, written with the standard library alone (no TensorFlow or
tensorboard package needed to write them; `pip install tensorboard` to view them).

The format: a TFRecord file (each record: its length as uint64, the length's masked CRC-32C, the bytes, their
masked CRC-32C) of `tensorflow.Event` protocol buffers, here encoded by hand: the first says the file version,
each later one holds one logged step's numbers as `Summary.Value(tag, simple_value)`.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

TENSORBOARD_DIR = "tensorboard"


class TensorBoardTracker:
    """Writes each logged step's numeric metrics to a new event file in `workdir/tensorboard/` (one file per
    attempt of the run: TensorBoard shows all the files of a folder as one run)."""

    def __init__(self, workdir: Path):
        folder = workdir / TENSORBOARD_DIR
        folder.mkdir(exist_ok=True)
        now = time.time()
        self.path = folder / f"events.out.tfevents.{now:.6f}.{socket.gethostname()}.{os.getpid()}"
        self.file = self.path.open("ab")
        self._write(_double(1, now) + _bytes(3, b"brain.Event:2"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        values = b"".join(_bytes(1, _bytes(1, name.encode()) + _float(2, value)) for name, value in metrics.items()
                          if isinstance(value, (int, float)) and not isinstance(value, bool))
        if values:
            self._write(_double(1, time.time()) + _varint_field(2, step) + _bytes(5, values))

    def close(self) -> None:
        self.file.close()

    def _write(self, event: bytes) -> None:
        length = struct.pack("<Q", len(event))
        self.file.write(length + _masked_crc(length) + event + _masked_crc(event))
        self.file.flush()


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # negative int64s take ten bytes, as protobuf writes them
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", value)


def _float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def _bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord files."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
