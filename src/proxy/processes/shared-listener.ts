// The FHIR listener every proxy process accepts on. The supervisor binds it once and passes
// it to each child as an inherited file descriptor; the kernel hands each new connection to
// one of the processes accepting on it. The supervisor binds without listening (node:net's
// _createServerHandle, the call node:cluster makes for the same purpose), so it never accepts
// a connection itself; the first child's listen() puts the socket in the listening state,
// where it stays while the supervisor holds it, so connections queue while children restart.

import { lookup } from 'node:dns/promises';
import net from 'node:net';

interface TcpHandle {
  fd: number;
  getsockname(out: { address?: string; port?: number }): number;
  close(): void;
}

const createServerHandle = (net as unknown as { _createServerHandle(address: string, port: number, addressType: number): TcpHandle | number })._createServerHandle;

export interface SharedListener {
  /** The descriptor a child inherits. */
  fd: number;
  address: string;
  port: number;
  close(): void;
}

export async function bindShared(host: string, port: number): Promise<SharedListener> {
  const address = net.isIP(host) ? host : (await lookup(host)).address;
  const handle = createServerHandle(address, port, net.isIP(address));
  if (typeof handle === 'number') throw new Error(`cannot bind ${host}:${port}: error ${handle}${handle === -98 ? ' (address in use)' : ''}`);
  const out: { address?: string; port?: number } = {};
  handle.getsockname(out);
  return { fd: handle.fd, address: out.address ?? address, port: out.port ?? port, close: () => handle.close() };
}
