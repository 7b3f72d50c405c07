"""A real SMTP server (aiosmtpd) for peerex's mail tests, with faults injected on request.

    python3 server.py DIR

Listens on 127.0.0.1 (a free port, written to DIR/port once listening), appends every mail it
accepts to DIR/mails.jsonl as {"from", "to", "data"} and a line to DIR/attempts for every DATA.
Before each mail's DATA is answered it takes the first line of DIR/faults (if any) and acts on it:

    451      answer 451 (a transient refusal)
    554      answer 554 (a permanent refusal)
    drop     close the connection without answering (the client sees it vanish mid-message)
    slow     wait 5 seconds (longer than the client's timeout), then answer 451

A recipient starting with "refuse" is refused at RCPT with 550.
"""

import asyncio
import json
import os
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, directory):
        self.dir = directory

    def next_fault(self):
        path = os.path.join(self.dir, "faults")
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        if not lines:
            return None
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines[1:]))
        return lines[0].strip()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refuse"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # Every attempt is counted, taken or not: a test waits on it to act mid-message.
        with open(os.path.join(self.dir, "attempts"), "a") as f:
            f.write("data\n")
        fault = self.next_fault()
        if fault == "451":
            return "451 4.3.0 try again later"
        if fault == "554":
            return "554 5.7.1 message refused"
        if fault == "drop":
            server.transport.close()
            return "421 4.3.2 closing"
        if fault == "slow":
            # Slower than the client waits; the mail is then not taken.
            await asyncio.sleep(5)
            return "451 4.3.0 too slow"
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf8", errors="replace"),
        }
        with open(os.path.join(self.dir, "mails.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 accepted"


async def serve(directory):
    loop = asyncio.get_running_loop()
    # Port 0: the system picks a free port and it stays ours (no probe another test could race).
    server = await loop.create_server(lambda: SMTP(Handler(directory)), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = os.path.join(directory, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, os.path.join(directory, "port"))
    # Runs until the test kills it.
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
