#!/usr/bin/python3
"""Counts the coloured pixels of a PNG, with a small decoder (zlib and PNG
unfiltering; numpy for speed, no PIL).

usage: png_colours.py IMAGE.png MIN_COLOURED MIN_PALETTE_COLOURS

Coloured: max(r, g, b) − min(r, g, b) >= 60, which white, greys, black text
and the page background are not. A palette colour counts as present when at
least 40 pixels are within 40 (per channel) of it: the charts draw with the
Okabe–Ito palette, so several present colours mean several series were drawn.
Prints the counts and "OK", or why not and exits 1. Run with /usr/bin/python3
(Debian's, which has python3-numpy from apt); a missing package is one line
naming it.
"""
import struct
import sys
import zlib

try:
    import numpy as np
except ImportError as missing:
    sys.exit(f"png_colours: missing Debian package python3-{missing.name.split('.')[0]}: scripts/install-deps.sh installs it")

OKABE_ITO = {
    "blue": (0x00, 0x72, 0xB2), "orange": (0xE6, 0x9F, 0x00), "green": (0x00, 0x9E, 0x73),
    "vermillion": (0xD5, 0x5E, 0x00), "purple": (0xCC, 0x79, 0xA7), "sky": (0x56, 0xB4, 0xE9),
}


def unfilter_sequential(kind, line, previous, bpp):
    row = bytearray(len(line))
    for x in range(len(line)):
        a = row[x - bpp] if x >= bpp else 0
        b = previous[x]
        if kind == 3:
            row[x] = (line[x] + ((a + b) >> 1)) & 0xFF
            continue
        c = previous[x - bpp] if x >= bpp else 0
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        row[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return np.frombuffer(bytes(row), dtype=np.uint8)


def decode_png(path):
    """Returns an (height, width, 3) uint8 array. 8-bit RGB or RGBA, not interlaced."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    if depth != 8 or colour_type not in (2, 6) or interlace != 0:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour_type}, interlace {interlace})")
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:  # None
            row = line.copy()
        elif kind == 1:  # Sub: a running sum along each channel
            row = np.cumsum(line.reshape(width, bpp).astype(np.uint32), axis=0).astype(np.uint8).reshape(stride)
        elif kind == 2:  # Up
            row = line + previous
        else:  # Average and Paeth depend on the byte just decoded: a plain loop (numpy per pixel is slower)
            row = unfilter_sequential(kind, line.tobytes(), previous.tobytes(), bpp)
        out[y] = row
        previous = row
    return out.reshape(height, width, bpp)[:, :, :3]


def main():
    path, min_coloured, min_palette = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pixels = decode_png(path).astype(np.int32)
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    coloured = int((spread >= 60).sum())
    present = [name for name, rgb in OKABE_ITO.items()
               if int((np.abs(pixels - np.array(rgb)).max(axis=2) <= 40).sum()) >= 40]
    print(f"{path}: {pixels.shape[1]}x{pixels.shape[0]}, {coloured} coloured pixels, palette colours {present}")
    if coloured < min_coloured or len(present) < min_palette:
        print(f"expected at least {min_coloured} coloured pixels and {min_palette} palette colours")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
