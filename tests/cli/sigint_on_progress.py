"""Runs a command with its stderr on a pseudo-terminal (so adalog draws its live progress line),
sends SIGINT once the progress output matches PATTERN (a Python regex over bytes), and prints
`sent=<True|False> rc=<exit status>` followed by everything the command wrote to stderr.

Usage: sigint_on_progress.py PATTERN COMMAND [ARG...]
Shared by the CLI tests that check Ctrl-C leaves no output (quantize.sh, optimize.sh)."""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

pattern = re.compile(sys.argv[1].encode())
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=slave)
os.close(slave)
buf, sent, deadline = b"", False, time.time() + 300
while time.time() < deadline:
    if not sent and pattern.search(buf):
        p.send_signal(signal.SIGINT)
        sent = True
    r, _, _ = select.select([master], [], [], 0.2)
    if r:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            break
        buf += chunk
    elif p.poll() is not None:
        break
else:
    p.kill()
rc = p.wait()
print(f"sent={sent} rc={rc}")
print(buf.decode("utf-8", "replace").replace("\r", "\n"))
