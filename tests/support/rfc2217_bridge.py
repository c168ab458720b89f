"""An RFC 2217 server for the tests, in front of a virtual board's pty: pyserial's PortManager
(the protocol side of pyserial's rfc2217_server.py example) and a reader thread, one client at
a time. A pty has no modem lines, so the DTR, RTS and baud rate the client sets are printed
(`dtr 0`, `rts 1`, `baud 115200`) for the test to read, instead of being switched.

Usage: python rfc2217_bridge.py PTY. First line on stdout: `listening PORT` (on 127.0.0.1).
"""

import socket
import sys
import threading

import serial
import serial.rfc2217


class Pty(serial.Serial):
    def _update_rts_state(self):
        print(f"rts {int(self._rts_state)}", flush=True)

    def _update_dtr_state(self):
        print(f"dtr {int(self._dtr_state)}", flush=True)

    def _update_break_state(self):
        pass

    # No modem lines to read either: PortManager polls them for its notifications.
    @property
    def cts(self):
        return False

    @property
    def dsr(self):
        return False

    @property
    def ri(self):
        return False

    @property
    def cd(self):
        return False

    def _reconfigure_port(self, force_update=False):
        super()._reconfigure_port(force_update)
        print(f"baud {self._baudrate}", flush=True)


class Client:
    """What PortManager writes to: the connection."""

    def __init__(self, conn):
        self.conn = conn

    def write(self, data):
        self.conn.sendall(data)


def main():
    port = Pty(sys.argv[1], 115200, timeout=0.05)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    print(f"listening {server.getsockname()[1]}", flush=True)
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = Client(conn)
    manager = serial.rfc2217.PortManager(port, client)
    alive = True

    def board_to_client():
        while alive:
            data = port.read(4096)
            if data:
                client.write(b"".join(manager.escape(data)))

    threading.Thread(target=board_to_client, daemon=True).start()
    while True:
        data = conn.recv(4096)
        if not data:
            break
        port.write(b"".join(manager.filter(data)))
    alive = False


if __name__ == "__main__":
    main()
