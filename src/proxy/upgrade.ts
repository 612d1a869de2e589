// Requests that ask for another protocol (Upgrade: h2c, websocket, ...). The front door speaks
// HTTP/1.1 only: it serves such a request as a plain one and never forwards the Upgrade. But
// Node's parser, once it has read an Upgrade request that nobody takes, drops whatever followed
// it in the same write and from then on silently swallows bytes that are no request: a
// malformed follow-up was never answered, and the connection stayed open until a timeout
// ended it. So the answer to an Upgrade request closes the connection (`Connection: close`,
// as HTTP lets a server do at any answer), and a request that still arrives on that connection
// before it closes is refused without being forwarded: its answer could not be sent.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const UPGRADE_ASKED = Symbol('fhirguard.upgradeAsked');
const AFTER_UPGRADE = Symbol('fhirguard.afterUpgrade');

type Marked = { [UPGRADE_ASKED]?: true; [AFTER_UPGRADE]?: true };

/** The server's first 'request' listener: runs before Fastify sees the request. */
export function closeAfterUpgrade(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket as Socket & Marked;
  if (socket[UPGRADE_ASKED]) (req as IncomingMessage & Marked)[AFTER_UPGRADE] = true;
  if (req.headers.upgrade !== undefined) {
    socket[UPGRADE_ASKED] = true;
    res.shouldKeepAlive = false;
  }
}

/** The request came on a connection whose earlier request asked for an Upgrade (it is closing). */
export function afterUpgrade(req: IncomingMessage): boolean {
  return (req as IncomingMessage & Marked)[AFTER_UPGRADE] === true;
}
