#!/usr/bin/env python3
"""A non-interactive client for DPDK's telemetry socket (dpdk-telemetry.py is interactive).

  dpdk_telemetry.py PREFIX COMMAND...        one JSON reply per command, one per line
  dpdk_telemetry.py PREFIX /ethdev/stats,1 /espgw/stats

PREFIX is the EAL --file-prefix of the process; its socket is
/var/run/dpdk/PREFIX/dpdk_telemetry.v2 (SOCK_SEQPACKET: one message per command and reply).
scripts/bench.sh imports this module to sample port counters.
"""
import json
import os
import socket
import sys
import time

RUNTIME_DIR = "/var/run/dpdk"


def socket_path(prefix: str) -> str:
    return os.path.join(RUNTIME_DIR, prefix, "dpdk_telemetry.v2")


class Telemetry:
    """One connection to a DPDK process's telemetry socket."""

    def __init__(self, prefix: str, timeout: float = 10.0):
        path = socket_path(prefix)
        deadline = time.monotonic() + timeout
        # The socket appears once the EAL is up; the process may still be starting.
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                self.sock.settimeout(10.0)  # generous: the machine may be busy
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no DPDK telemetry socket at {path} after {timeout:.0f} s")
                time.sleep(0.1)
        # The server greets with {"version": ..., "pid": ..., "max_output_len": N}.
        hello = json.loads(self.sock.recv(4096).decode())
        self.max_len = int(hello.get("max_output_len", 16384))
        self.pid = hello.get("pid")

    def query(self, command: str):
        """Sends one command ("/ethdev/stats,1") and returns the value of its reply."""
        self.sock.send(command.encode())
        reply = json.loads(self.sock.recv(self.max_len).decode())
        key = command.split(",", 1)[0]
        if key not in reply or reply[key] is None:
            raise RuntimeError(f"telemetry: {command} returned {reply}")
        return reply[key]

    def close(self) -> None:
        self.sock.close()


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip())
    t = Telemetry(sys.argv[1])
    for cmd in sys.argv[2:]:
        print(json.dumps(t.query(cmd)))
    t.close()


if __name__ == "__main__":
    main()
