// Paths to the shared, read-only corpora (../shared/corpus relative to the repository root).
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CORPUS = path.resolve(__dirname, '..', '..', '..', 'shared', 'corpus');
export const EXAMPLES = path.join(CORPUS, 'r4-examples', 'json');
export const FLAGGED = path.join(CORPUS, 'r4-examples', 'json-ibm-flagged');
export const SYNTHEA = path.join(CORPUS, 'synthea');

export function jsonFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'index.json')
    .sort();
}

export function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}
