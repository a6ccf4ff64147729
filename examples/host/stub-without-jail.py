#!/usr/bin/env python3
"""Runs plugjail-stub with NO jail and NO seccomp, channel on stdin/stdout: for trying the
protocol (e.g. with host.c) before `plugjail serve` is available. Never use it for
untrusted plugins.

    ./host greet - -- python3 stub-without-jail.py hello.so path/to/plugjail-stub
"""
import os
import sys

plugin, stub = sys.argv[1], sys.argv[2]
fd = os.memfd_create("plugin", 0)
os.write(fd, open(plugin, "rb").read())
fd = os.dup2(fd, 50)  # out of the way of 3..5, which are about to be taken
os.dup2(0, 3)
os.dup2(1, 4)
os.dup2(fd, 5)
os.execv(stub, ["plugjail-stub", "--channel", "3,4", "--plugin-fd", "5",
                "--max-message", str(16 << 20), "--no-serve-filter"])
