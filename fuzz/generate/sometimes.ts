// `arb` once in `oneIn` draws, null otherwise (fast-check's option() weighs the other way:
// its freq is how rarely it gives null).

import fc from 'fast-check';

export function sometimes<T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}
