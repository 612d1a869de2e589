// The connection a pool member's requests travel on: undici's Client, with one correction to
// what it tells the Pool that owns it.
//
// Client.dispatch() returns false for two reasons. Usually the request was queued and the
// client is busy: it emits 'drain' once it is free, and until then the Pool sends it nothing.
// But a request the client refuses while building it (a header undici will not send, such
// as Expect; a malformed value) is handed to its handler's onError at once and never queued,
// and dispatch() returns false then too. The Pool takes that for "busy" and waits for a
// 'drain' that never comes: the connection is lost for good. After as many such refusals as
// the member has connections, every later request waits in the Pool's queue forever while
// the member's health checks (which take the same queue only once a connection frees up)
// cannot tell. This client says "not busy" when nothing was queued, so the Pool keeps using
// the connection: whatever undici refuses, no connection slot is ever lost to it.

import { Client, type Dispatcher } from 'undici';

export class UpstreamClient extends Client {
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const queuedBefore = this.stats.size;
    if (super.dispatch(options, handler)) return true;
    // Busy only when the request was queued; a closed client stays out of the Pool's choice.
    return this.stats.size === queuedBefore && !this.closed && !this.destroyed;
  }
}

/** The Pool's factory for its connections (undici's Pool option `factory`). */
export function upstreamClient(origin: URL, options: object): Dispatcher {
  return new UpstreamClient(origin, options as Client.Options);
}
