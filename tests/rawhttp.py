"""Send raw bytes to 127.0.0.1:PORT and print the answer (for HTTP edge cases).

usage: rawhttp.py PORT [--idle SECONDS] [--pause-after N --pause SECONDS]
Reads the bytes to send from stdin.  Prints everything received until the
server closes the connection or nothing arrives for --idle seconds (default 2).
The last line printed is "<<closed>>" when the server closed the connection,
or "<<open>>" when it was still open.
"""
import socket
import sys
import time


def main():
    port = int(sys.argv[1])
    idle = 2.0
    args = sys.argv[2:]
    while args:
        if args[0] == "--idle":
            idle = float(args[1])
            args = args[2:]
        else:
            raise SystemExit("unknown option " + args[0])
    data = sys.stdin.buffer.read()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(data)
    except OSError:
        pass
    s.settimeout(idle)
    out = b""
    closed = False
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        out += chunk
    sys.stdout.buffer.write(out)
    sys.stdout.write("\n<<closed>>\n" if closed else "\n<<open>>\n")
    s.close()


if __name__ == "__main__":
    main()
