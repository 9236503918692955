"""PNG files on which libpng and PIL (VISSL's decoder) disagree, for issue 19 case 18.

Run by hand with the reference venv:  python scripts/make_png_pil_quirk_fixtures.py
Writes Tests/Fixtures/images/pil-quirks/{*.png, expected.json}: for each file whether PIL
decodes it (and then its RGB pixels equal the 6x5 source's) or refuses it, and PIL's message.
"""
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "images" / "pil-quirks"


def chunks(data):
    i, out = 8, []
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        out.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + n]))
        i += 12 + n
    return out


def build(parts):
    out = b"\x89PNG\r\n\x1a\n"
    for part in parts:
        kind, body = part[0], part[1]
        crc = part[2] if len(part) > 2 else zlib.crc32(kind + body) & 0xFFFFFFFF
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(0).random((6, 5, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    ihdr, *rest = chunks(buffer.getvalue())
    bomb = zlib.compress(b"a" * (2 << 20), 9)  # inflates to 2 MiB > PIL's MAX_TEXT_CHUNK (1 MiB)
    fine = zlib.compress(b"a" * (512 << 10), 9)
    bad_crc = lambda k, b: (k, b, (zlib.crc32(k + b) ^ 1) & 0xFFFFFFFF)
    files = {
        "bad_idat_crc.png": [ihdr] + [bad_crc(k, b) if k == b"IDAT" else (k, b) for k, b in rest],
        "bad_text_crc_before_idat.png": [ihdr, bad_crc(b"tEXt", b"Comment\x00hi")] + rest,
        "ztxt_2mib.png": [ihdr, (b"zTXt", b"Comment\x00\x00" + bomb)] + rest,
        "iccp_2mib.png": [ihdr, (b"iCCP", b"icc\x00\x00" + bomb)] + rest,
        "itxt_2mib.png": [ihdr, (b"iTXt", b"Comment\x00\x01\x00en\x00Kommentar\x00" + bomb)] + rest,
        "ztxt_512kib.png": [ihdr, (b"zTXt", b"Comment\x00\x00" + fine)] + rest,
        "ztxt_method_1.png": [ihdr, (b"zTXt", b"Comment\x00\x01" + fine)] + rest,
        "ztxt_broken_stream.png": [ihdr, (b"zTXt", b"Comment\x00\x00" + b"\x78\x9c\xff\xff\xff\xff")] + rest,
    }
    expected = {}
    for name, parts in files.items():
        (OUT / name).write_bytes(build(parts))
        try:
            rgb = np.asarray(Image.open(OUT / name).convert("RGB"))
            expected[name] = {"pil": "decodes", "same_pixels": bool((rgb == pixels).all())}
        except Exception as error:  # what PIL says is the point
            expected[name] = {"pil": "refuses", "error": f"{type(error).__name__}: {error}".replace(str(OUT) + "/", "")}
    (OUT / "pixels.rgb").write_bytes(pixels.tobytes())
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
