// Keeps one process.nextTick object alive for the life of the process, so that the hidden
// class (V8 map) every tick object shares is never collected.
//
// Node builds each tick object with a literal whose first keys are computed (its async-id
// symbols). Optimised code stores those keys on a fast path only while the literal has only
// ever met one map; once it meets a second, every later tick object is built through V8's
// runtime (Runtime_DefineKeyedOwnPropertyInLiteral) for the life of the process. A second
// map appears when a full garbage collection runs while no tick object is alive: the maps
// die and the next tick object gets new ones. That is a coin flip under load and near
// certain when the process idles (V8's memory reducer then runs full collections that keep
// no unused maps). Every socket read and write of the proxy goes through nextTick, so a
// proxy in that state serves visibly less for the same CPU (bench:proxy's profiles showed it,
// in the bare baseline proxy too; bench/results/NOTES.md has the figures). A tick object kept alive keeps its map (and the maps before it) alive,
// so the literal only ever meets the one map.

import { createHook } from 'node:async_hooks';

let held: object | undefined;

function noop(): void {}

/**
 * Holds a tick object for the rest of the process's life (once; later calls return the same
 * one). Undefined if none could be caught, which would mean Node builds tick objects
 * differently now; the proxy logs that and runs on.
 */
export function holdTickObjectShape(): object | undefined {
  if (held) return held;
  // An init hook sees every async resource made while enabled, tick objects included; it is
  // enabled for this one nextTick only, so nothing else pays for it.
  const hook = createHook({
    init(_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject' && held === undefined) held = resource;
    },
  });
  hook.enable();
  try {
    process.nextTick(noop);
  } finally {
    hook.disable();
  }
  return held;
}
