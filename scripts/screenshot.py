#!/usr/bin/env python3
"""Makes assets/screenshot.png from a real run of `espchat demo` in tmux.

tmux runs the demo at 120x36, this script types into it as a user would, captures the screen
with its colours (`capture-pane -e`), replays the capture in pyte (a terminal emulator) and
draws the cells with Pillow in DejaVu Sans Mono.

    python3 -m venv /tmp/shot && /tmp/shot/bin/pip install pyte pillow
    cargo build --release && /tmp/shot/bin/python scripts/screenshot.py
"""

import os
import subprocess
import sys
import time

import pyte
from PIL import Image, ImageDraw, ImageFont

COLS, ROWS = 120, 36
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ESPCHAT = os.path.join(ROOT, "target", "release", "espchat")
OUT = os.path.join(ROOT, "assets", "screenshot.png")
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
SESSION = "espchat-screenshot"

# xterm's palette for the 16 basic colours.
PALETTE = {
    "black": (0, 0, 0), "red": (205, 49, 49), "green": (13, 188, 121), "brown": (229, 229, 16),
    "yellow": (229, 229, 16), "blue": (36, 114, 200), "magenta": (188, 63, 188),
    "cyan": (17, 168, 205), "white": (229, 229, 229), "brightblack": (102, 102, 102),
    "brightred": (241, 76, 76), "brightgreen": (35, 209, 139), "brightyellow": (245, 245, 67),
    "brightblue": (59, 142, 234), "brightmagenta": (214, 112, 214), "brightcyan": (41, 184, 219),
    "brightwhite": (255, 255, 255),
}
FOREGROUND, BACKGROUND = (220, 220, 220), (24, 24, 28)


def tmux(*args, capture=False):
    result = subprocess.run(["tmux", "-L", SESSION, *args], check=True,
                            capture_output=capture, text=True)
    return result.stdout if capture else None


def screen_text():
    return tmux("capture-pane", "-p", "-t", SESSION, capture=True)


def wait_for(text, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        if text in screen_text():
            return
        time.sleep(0.1)
    sys.exit(f"no {text!r} on the screen within {seconds} s:\n{screen_text()}")


def colour(value, default):
    if value == "default":
        return default
    if value in PALETTE:
        return PALETTE[value]
    if len(value) == 6:
        return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))
    return default


def render(ansi):
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.Stream(screen)
    # Exactly the screen's rows: a newline after the last one would scroll it by a line.
    stream.feed("\r\n".join(ansi.split("\n")[:ROWS]))
    regular = ImageFont.truetype(os.path.join(FONT_DIR, "DejaVuSansMono.ttf"), 15)
    bold = ImageFont.truetype(os.path.join(FONT_DIR, "DejaVuSansMono-Bold.ttf"), 15)
    left, top, right, bottom = regular.getbbox("M")
    cell_w, cell_h = right - left + 1, 19
    pad = 12
    image = Image.new("RGB", (COLS * cell_w + 2 * pad, ROWS * cell_h + 2 * pad), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for y in range(ROWS):
        line = screen.buffer[y]
        for x in range(COLS):
            char = line[x]
            fg, bg = colour(char.fg, FOREGROUND), colour(char.bg, BACKGROUND)
            if char.reverse:
                fg, bg = bg, fg
            x0, y0 = pad + x * cell_w, pad + y * cell_h
            if bg != BACKGROUND:
                draw.rectangle([x0, y0, x0 + cell_w - 1, y0 + cell_h - 1], fill=bg)
            if char.data.strip():
                draw.text((x0, y0 + 1), char.data, fill=fg, font=bold if char.bold else regular)
    image.save(OUT)


def main():
    subprocess.run(["tmux", "-L", SESSION, "kill-server"], capture_output=True)
    tmux("new-session", "-d", "-s", SESSION, "-x", str(COLS), "-y", str(ROWS),
         "env", "TERM=xterm-256color", "bash", "--norc", "--noprofile")
    try:
        tmux("send-keys", "-t", SESSION, "clear; " + ESPCHAT + " demo --clients 2", "Enter")
        wait_for("Client 2 connected")
        tmux("send-keys", "-t", SESSION, "hi, this is pane 1", "Enter")
        wait_for("Client 1: hi, this is pane 1")
        tmux("send-keys", "-t", SESSION, "on", "Enter")
        wait_for("LED on (Client 1)")
        tmux("send-keys", "-t", SESSION, "Tab")
        tmux("send-keys", "-t", SESSION, "on", "Enter")
        wait_for("denied: only Client 1")
        time.sleep(0.5)
        render(tmux("capture-pane", "-e", "-p", "-t", SESSION, capture=True))
        tmux("send-keys", "-t", SESSION, "C-q")
    finally:
        subprocess.run(["tmux", "-L", SESSION, "kill-server"], capture_output=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
