"""MISB KLV metadata packets (SMPTE 336M) turned into PositionFixes.

Two sets are understood: the MISB ST 0601 UAS Datalink local set (what current drones and gimbals
send) and the older MISB EG 0104 universal set (full 16-byte keys, IEEE floats). Our own decoder
rather than the `klvdata` package: the subset we need is small, and we must control how a bad
packet is counted and skipped. Reading packets out of files and MPEG-TS streams is in
`streams.klv_files`.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streams import GeoPoint, PositionFix

log = logging.getLogger(__name__)

UL_PREFIX = bytes.fromhex("060e2b34")
UAS_LS_KEY = bytes.fromhex("060e2b34020b01010e01030101000000")  # ST 0601 local set
EG0104_KEY = bytes.fromhex("060e2b34020101010e01010201010000")  # EG 0104 universal set
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KlvError(ValueError):
    """A packet that cannot be trusted: truncated, bad length, wrong checksum."""


@dataclass(frozen=True)
class KlvPacket:
    """One top-level KLV triplet: its 16-byte key and value, and where it ends in the buffer."""

    key: bytes
    value: bytes
    raw: bytes  # key + length + value, what the ST 0601 checksum covers


def ber_length(buf: bytes, i: int) -> tuple[int, int]:
    """A BER length at `i`: (length, index after it). Short form below 0x80, else 0x8N + N bytes."""
    if i >= len(buf):
        raise KlvError("truncated before the length")
    first = buf[i]
    if first < 0x80:
        return first, i + 1
    n = first & 0x7F
    if n == 0 or n > 8 or i + 1 + n > len(buf):
        raise KlvError(f"bad BER length form 0x{first:02x}")
    return int.from_bytes(buf[i + 1 : i + 1 + n], "big"), i + 1 + n


def ber_oid(buf: bytes, i: int) -> tuple[int, int]:
    """A BER-OID tag number at `i` (7 bits a byte, high bit = more follows): (tag, index after it)."""
    tag = 0
    for k in range(4):  # ST 0601 tags fit in far fewer than 4 bytes; longer is garbage
        if i + k >= len(buf):
            break
        byte = buf[i + k]
        tag = (tag << 7) | (byte & 0x7F)
        if byte < 0x80:
            return tag, i + k + 1
    raise KlvError("bad BER-OID tag")


def read_packet(buf: bytes, i: int = 0) -> KlvPacket:
    """The KLV triplet starting at `i` (a 16-byte universal key, BER length, value)."""
    if buf[i : i + 4] != UL_PREFIX:
        raise KlvError("no SMPTE universal label here")
    if i + 16 > len(buf):
        raise KlvError("truncated key")
    length, start = ber_length(buf, i + 16)
    if start + length > len(buf):
        raise KlvError(f"truncated: {length} bytes announced, {len(buf) - start} present")
    return KlvPacket(buf[i : i + 16], buf[start : start + length], buf[i : start + length])


def st0601_checksum(data: bytes) -> int:
    """ST 0601's checksum: a 16-bit running sum of the bytes taken as big-endian 16-bit words.

    It covers the packet from the first key byte up to and including the checksum's tag and length.
    (Not a CRC: checked against the sample packets, whose stored values match this sum.)
    """
    total = 0
    for k, byte in enumerate(data):
        total += byte << 8 if k % 2 == 0 else byte
    return total & 0xFFFF


# --- ST 0601 ----------------------------------------------------------------------------------

# tag -> (name, signed, bytes, low, high): ST 0601's linear mapping of an integer onto [low, high].
# Unsigned: low + raw * (high - low) / (2**bits - 1). Signed: raw * (high - low) / (2**bits - 2),
# where the most negative raw value is the "out of range" marker.
_SCALED: dict[int, tuple[str, bool, int, float, float]] = {
    5: ("heading", False, 2, 0, 360),
    6: ("pitch", True, 2, -20, 20),
    7: ("roll", True, 2, -50, 50),
    13: ("lat", True, 4, -90, 90),
    14: ("lon", True, 4, -180, 180),
    15: ("alt", False, 2, -900, 19000),
    16: ("hfov", False, 2, 0, 180),
    17: ("vfov", False, 2, 0, 180),
    18: ("sensor_az", False, 4, 0, 360),
    19: ("sensor_el", True, 4, -180, 180),
    20: ("sensor_roll", False, 4, 0, 360),
    21: ("slant", False, 4, 0, 5_000_000),
    23: ("fc_lat", True, 4, -90, 90),
    24: ("fc_lon", True, 4, -180, 180),
    25: ("fc_elev", False, 2, -900, 19000),
    56: ("ground_speed", False, 1, 0, 255),
    90: ("pitch_full", True, 4, -90, 90),
    91: ("roll_full", True, 4, -90, 90),
}
for _n in range(4):  # offset corners 26-33 (relative to the frame centre), full corners 82-89
    _SCALED[26 + 2 * _n] = (f"off_lat{_n}", True, 2, -0.075, 0.075)
    _SCALED[27 + 2 * _n] = (f"off_lon{_n}", True, 2, -0.075, 0.075)
    _SCALED[82 + 2 * _n] = (f"corner_lat{_n}", True, 4, -90, 90)
    _SCALED[83 + 2 * _n] = (f"corner_lon{_n}", True, 4, -180, 180)


def _scale(value: bytes, signed: bool, size: int, low: float, high: float) -> float | None:
    if len(value) != size:
        raise KlvError(f"{len(value)} bytes where {size} are due")
    raw = int.from_bytes(value, "big", signed=signed)
    bits = 8 * size
    if signed:
        if raw == -(1 << (bits - 1)):
            return None  # "out of range" / error marker
        return raw * (high - low) / ((1 << bits) - 2)
    return low + raw * (high - low) / ((1 << bits) - 1)


def decode_st0601(packet: KlvPacket) -> dict[str, float | int | None]:
    """The local set's items we use, by name; raises KlvError on a bad checksum or structure.

    Tags we do not use are stepped over. A known tag with a wrong length is dropped (logged at
    debug level) rather than failing the packet, since the other tags remain sound.
    """
    buf = packet.value
    i = 0
    items: dict[str, float | int | None] = {}
    checksum_seen = False
    while i < len(buf):
        tag_at = i
        tag, i = ber_oid(buf, i)
        length, i = ber_length(buf, i)
        if i + length > len(buf):
            raise KlvError(f"tag {tag} runs past the packet end")
        value = buf[i : i + length]
        i += length
        if tag == 1:
            if length != 2:
                raise KlvError("checksum is not 2 bytes")
            covered = len(packet.raw) - len(buf) + i - 2
            expected = st0601_checksum(packet.raw[:covered])
            stored = int.from_bytes(value, "big")
            if stored != expected:
                raise KlvError(f"checksum 0x{stored:04x} != computed 0x{expected:04x}")
            checksum_seen = True
            if tag_at + 4 != len(buf):
                log.debug("ST 0601 checksum is not the last item")
        elif tag == 2:
            if length != 8:
                raise KlvError("precision time stamp is not 8 bytes")
            items["time_us"] = int.from_bytes(value, "big")
        elif tag == 65 and length == 1:
            items["version"] = value[0]
        elif tag in _SCALED:
            name, signed, size, low, high = _SCALED[tag]
            try:
                items[name] = _scale(value, signed, size, low, high)
            except KlvError as exc:
                log.debug("ST 0601 tag %d dropped: %s", tag, exc)
    if not checksum_seen:
        raise KlvError("no checksum (tag 1)")
    return items


def fix_from_st0601(items: dict[str, float | int | None]) -> PositionFix | None:
    """The sensor position with attitude and footprint; None without a sensor latitude/longitude."""
    lat, lon = items.get("lat"), items.get("lon")
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None
    fc_lat, fc_lon = items.get("fc_lat"), items.get("fc_lon")
    center = GeoPoint(fc_lat, fc_lon, items.get("fc_elev")) if fc_lat is not None and fc_lon is not None else None
    return PositionFix(
        lat=float(lat),
        lon=float(lon),
        alt_m=_opt(items.get("alt")),
        utc=_utc(items.get("time_us")),
        heading_deg=_opt(items.get("heading")),
        speed_mps=_opt(items.get("ground_speed")),
        source="klv-st0601",
        pitch_deg=_opt(items.get("pitch_full", items.get("pitch"))),
        roll_deg=_opt(items.get("roll_full", items.get("roll"))),
        sensor_azimuth_deg=_opt(items.get("sensor_az")),
        sensor_elevation_deg=_opt(items.get("sensor_el")),
        sensor_roll_deg=_opt(items.get("sensor_roll")),
        hfov_deg=_opt(items.get("hfov")),
        vfov_deg=_opt(items.get("vfov")),
        slant_range_m=_opt(items.get("slant")),
        frame_center=center,
        corners=_corners(items, center),
    )


def _corners(items: dict[str, float | int | None], center: GeoPoint | None) -> tuple[GeoPoint, ...] | None:
    """Full-precision corners (82-89) when all are present, else centre + offsets (26-33)."""
    full = [(items.get(f"corner_lat{n}"), items.get(f"corner_lon{n}")) for n in range(4)]
    if all(a is not None and b is not None for a, b in full):
        return tuple(GeoPoint(float(a), float(b)) for a, b in full)  # type: ignore[arg-type]
    if center is None:
        return None
    offsets = [(items.get(f"off_lat{n}"), items.get(f"off_lon{n}")) for n in range(4)]
    if not all(a is not None and b is not None for a, b in offsets):
        return None
    return tuple(GeoPoint(center.lat + float(a), center.lon + float(b)) for a, b in offsets)  # type: ignore[arg-type]


def _opt(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _utc(microseconds: float | int | None) -> datetime | None:
    if microseconds is None:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(microseconds))
    except OverflowError:
        return None


# --- EG 0104 ----------------------------------------------------------------------------------

# Keys of the RP 210 dictionary, compared from byte 8 on (byte 7 is the dictionary version, which
# varies between encoders). Values are big-endian IEEE floats; the timestamp is µs since 1970.
_EG0104: dict[bytes, str] = {
    bytes.fromhex("0702010101050000"): "time_us",
    bytes.fromhex("0701020102040200"): "lat",
    bytes.fromhex("0701020102060200"): "lon",
    bytes.fromhex("0701020102020000"): "alt",
    bytes.fromhex("0701100106000000"): "heading",
    bytes.fromhex("0701100105000000"): "pitch",
    bytes.fromhex("0701100104000000"): "roll",
    bytes.fromhex("0420020101080000"): "hfov",
    bytes.fromhex("04200201010a0100"): "vfov",
    bytes.fromhex("0701080101000000"): "slant",
    bytes.fromhex("0701020103020000"): "fc_lat",
    bytes.fromhex("0701020103040000"): "fc_lon",
    **{bytes.fromhex(f"07010201030{7 + n:x}0100"): f"corner_lat{n}" for n in range(4)},
    **{bytes.fromhex(f"07010201030{0xB + n:x}0100"): f"corner_lon{n}" for n in range(4)},
}


def decode_eg0104(packet: KlvPacket) -> dict[str, float | int | None]:
    """The universal set's items we use; unknown keys are stepped over. No checksum in EG 0104."""
    buf = packet.value
    i = 0
    items: dict[str, float | int | None] = {}
    while i < len(buf):
        item = read_packet(buf, i)
        i += len(item.raw)
        name = _EG0104.get(item.key[8:])
        if name is None:
            continue
        if name == "time_us" and len(item.value) == 8:
            items[name] = int.from_bytes(item.value, "big")
        elif len(item.value) in (4, 8):
            number = struct.unpack(">f" if len(item.value) == 4 else ">d", item.value)[0]
            items[name] = number if number == number else None  # NaN: not given
    return items


def fix_from_eg0104(items: dict[str, float | int | None]) -> PositionFix | None:
    """Like `fix_from_st0601`; EG 0104 gives absolute sensor angles, so the gimbal fields stay None."""
    lat, lon = items.get("lat"), items.get("lon")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    fc_lat, fc_lon = items.get("fc_lat"), items.get("fc_lon")
    center = GeoPoint(float(fc_lat), float(fc_lon)) if fc_lat is not None and fc_lon is not None else None
    heading = items.get("heading")
    return PositionFix(
        lat=float(lat),
        lon=float(lon),
        alt_m=_opt(items.get("alt")),
        utc=_utc(items.get("time_us")),
        heading_deg=None if heading is None else float(heading) % 360,
        source="klv-eg0104",
        pitch_deg=_opt(items.get("pitch")),
        roll_deg=_opt(items.get("roll")),
        hfov_deg=_opt(items.get("hfov")),
        vfov_deg=_opt(items.get("vfov")),
        slant_range_m=_opt(items.get("slant")),
        frame_center=center,
        corners=_corners(items, None),
    )


def known_set(key: bytes) -> str | None:
    """ "st0601" or "eg0104" for the sets we decode, None for any other KLV (security, ST 0903...)."""
    if key == UAS_LS_KEY:
        return "st0601"
    if key[:7] == EG0104_KEY[:7] and key[8:] == EG0104_KEY[8:]:
        return "eg0104"
    return None


def decode_packet(packet: KlvPacket) -> PositionFix | None:
    """A fix from a packet of a known set; None when it has no sensor position (or another key).

    Raises KlvError for a broken packet.
    """
    kind = known_set(packet.key)
    if kind == "st0601":
        return fix_from_st0601(decode_st0601(packet))
    if kind == "eg0104":
        return fix_from_eg0104(decode_eg0104(packet))
    return None
