"""The http service and a real browser: headless Chromium.

Chromium loads a directory listing and a page with two brightly coloured
PNG images from `sockit serve http`, takes screenshots (800x600) and dumps
the DOM. The screenshots are decoded here (zlib, no PIL) to check that the
page really rendered, images included; the access log must show that the
browser fetched both images. Skipped when chromium is not installed or
cannot start (scripts/deps.sh installs it from Debian).
"""

import os
import re
import shutil
import struct
import zlib

from harness import Server, Skip, poll_until, run, tempdir, timeout

SERIAL = True  # run alone (run.py -j): a headless browser: heavy, with its own timeouts

RED = (255, 0, 0)
YELLOW = (255, 230, 0)
BLUE = (0, 60, 255)
GREEN = (0, 220, 60)

LISTED = ["alpha-file.txt", "beta notes.md", "gamma.json", "delta-dir"]


# -- PNG ----------------------------------------------------------------------

def png_encode(width, height, pixel):
    """A truecolour 8-bit PNG; pixel(x, y) -> (r, g, b)."""
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(
            ">I", zlib.crc32(c) & 0xffffffff)
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y))
                                       for x in range(width))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                         0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def png_decode(data):
    """(width, height, [rows of (r, g, b)]) of an 8-bit, non-interlaced
    greyscale/RGB/RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: %r" % data[:16]
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    assert ihdr, "no IHDR"
    width, height, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0, ihdr
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "IDAT size"
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xff
        elif f == 2:
            line = bytearray((a + b) & 0xff for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xff
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xff
        else:
            assert f == 0, "filter %d" % f
        prev = line
        if bpp >= 3:
            rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        else:
            rows.append([(v, v, v) for v in line[::bpp]])
    return width, height, rows


def near(c, want, tol=40):
    return all(abs(a - b) <= tol for a, b in zip(c, want))


# -- chromium -----------------------------------------------------------------

def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise Skip("chromium is not installed (scripts/deps.sh installs it)")


def browse(exe, profile, *args):
    """Run headless chromium once; returns the Result."""
    env = dict(os.environ)
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    env["HOME"] = profile  # nothing of the real home is read or written
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-quic", "--no-first-run",
           "--disable-background-networking",
           "--disable-component-update", "--disable-sync",
           "--disable-crash-reporter", "--disable-breakpad",
           "--no-proxy-server", "--hide-scrollbars",
           "--user-data-dir=" + os.path.join(profile, "data")] + list(args)
    return run(cmd, timeout=60, env=env, check_san=False)


def make_site():
    root = os.path.join(tempdir(), "www")
    os.makedirs(os.path.join(root, "files", "delta-dir"))
    for name in LISTED[:-1]:
        with open(os.path.join(root, "files", name), "w") as f:
            f.write("%s\n" % name)
    with open(os.path.join(root, "red.png"), "wb") as f:
        f.write(png_encode(64, 64, lambda x, y: RED if (x // 8 + y // 8) % 2
                           else YELLOW))
    with open(os.path.join(root, "blue.png"), "wb") as f:
        f.write(png_encode(64, 64, lambda x, y: BLUE if (x // 8 + y // 8) % 2
                           else GREEN))
    with open(os.path.join(root, "gallery.html"), "w") as f:
        f.write("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
                "<title>gallery</title></head>"
                "<body style=\"margin:0;background:#ffffff\">"
                "<img src=\"red.png\" width=\"320\" height=\"320\" "
                "style=\"image-rendering:pixelated\">"
                "<img src=\"blue.png\" width=\"320\" height=\"320\" "
                "style=\"image-rendering:pixelated\">"
                "</body></html>\n")
    return root


def screenshot(exe, profile, url, out):
    r = browse(exe, profile, "--screenshot=" + out, "--window-size=800,600",
               url)
    if not os.path.exists(out):
        # Chromium did not start (or could not render anything at all).
        raise Skip("chromium made no screenshot (exit %s): %s" % (
            r.returncode, r.err.strip().splitlines()[-1:] or ""))
    with open(out, "rb") as f:
        data = f.read()
    assert data[12:16] == b"IHDR", data[:32]
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (800, 600), "screenshot is %dx%d" % (w, h)
    return png_decode(data)


@timeout(120)
def test_chromium_listing_and_images():
    exe = chromium()
    root = make_site()
    work = tempdir()
    log = os.path.join(work, "access.log")
    with Server(["http", "--root", root, "--listing", "--access-log", log,
                 "tcp://127.0.0.1:0"]) as srv:
        base = "http://127.0.0.1:%d" % srv.port

        # The listing: rendered (black text on white) and in the DOM.
        w, h, rows = screenshot(exe, work, base + "/files/",
                                os.path.join(work, "listing.png"))
        colours = {px for row in rows[::4] for px in row[::4]}
        assert len(colours) > 2, "the listing screenshot is flat: %s" % (
            sorted(colours)[:5])
        dark = sum(1 for row in rows for px in row if max(px) < 100)
        assert dark > 200, "no text in the listing screenshot (%d dark)" % (
            dark)

        r = browse(exe, work, "--dump-dom", base + "/files/")
        assert r.returncode == 0, r
        dom = r.out
        assert "Index of /files/" in dom, dom[:500]
        for name in LISTED:
            shown = name + "/" if name.endswith("-dir") else name
            assert ">%s</a>" % shown in dom, (name, dom[:1000])
        assert 'href="./beta%20notes.md"' in dom, dom[:1000]

        # The gallery: both images drawn.
        w, h, rows = screenshot(exe, work, base + "/gallery.html",
                                os.path.join(work, "gallery.png"))
        counts = {"red": 0, "yellow": 0, "blue": 0, "green": 0}
        for row in rows[::2]:
            for px in row[::2]:
                for name, c in (("red", RED), ("yellow", YELLOW),
                                ("blue", BLUE), ("green", GREEN)):
                    if near(px, c):
                        counts[name] += 1
        # Each image covers 320x320 of the page: ~25600 sampled pixels,
        # half of each of its two colours.
        for name, n in counts.items():
            assert n > 5000, "too few %s pixels: %s" % (name, counts)
        colours = {px for row in rows[::8] for px in row[::8]}
        assert len(colours) >= 4, colours

    def fetched():
        try:
            with open(log) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        want = [r'"GET /red\.png HTTP/1\.1" 200 \d+', r'"GET /blue\.png '
                r'HTTP/1\.1" 200 \d+', r'"GET /files/ HTTP/1\.1" 200 \d+',
                r'"GET /gallery\.html HTTP/1\.1" 200 \d+']
        return text if all(re.search(w, text) for w in want) else None
    text = poll_until(fetched, 5)
    assert text, "access log lacks the browser's requests:\n%s" % (
        open(log).read() if os.path.exists(log) else "")
    for png in ("red.png", "blue.png"):
        size = os.path.getsize(os.path.join(root, png))
        m = re.search(r'"GET /%s HTTP/1\.1" 200 (\d+) "([^"]*)" "([^"]*)"'
                      % re.escape(png), text)
        assert int(m.group(1)) == size, (png, m.group(0))
        assert m.group(2).endswith("/gallery.html"), m.group(0)  # Referer
        assert "Chrome" in m.group(3), m.group(0)  # User-Agent
