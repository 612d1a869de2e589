// A FHIRPath Patch names its operation type in a valueCode, and a JSON Patch its element in a
// path: names a plain object inherits are unknown types and elements (422), never a 500.

import { defaultValidator } from '../../src/fhir/validate';
import { checkFhirPathPatch, checkJsonPatch } from '../../src/fhir/validate/patch';

const INHERITED = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__', 'prototype'])];

test.each(INHERITED)('FHIRPath Patch operation type %s', (name) => {
  const doc = {
    resourceType: 'Parameters',
    parameter: [
      {
        name: 'operation',
        part: [
          { name: 'type', valueCode: name },
          { name: 'path', valueString: 'Patient.active' },
        ],
      },
    ],
  };
  expect(checkFhirPathPatch(defaultValidator(), 'Patient', doc).map((i) => [i.severity, i.diagnostics])).toEqual([
    ['error', "operation 0: part 'type' must be one of add, insert, delete, replace, move"],
  ]);
});

test.each(INHERITED)('JSON Patch path /%s', (name) => {
  expect(checkJsonPatch(defaultValidator(), 'Patient', [{ op: 'replace', path: `/${name}`, value: 'x' }]).map((i) => i.diagnostics)).toEqual([`operation 0: '${name}' is not an element of Patient`]);
});
