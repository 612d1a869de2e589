// The Node.js support table of docs/deploy.md, read so the tests hold the docs to the
// Dockerfile, package.json's engines and the native SQLite binding. The table is the first
// Markdown table under a heading that names Node.js versions; its columns are found by their
// header (Node.js, Status, Host install, Container images, Tested), a cell starting with "yes"
// is a yes.

import { readFileSync } from 'node:fs';

export interface NodeSupportRow {
  major: number;
  status: string;
  host: boolean;
  image: boolean;
  tested: boolean;
}

export function nodeSupport(file: string): NodeSupportRow[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const heading = lines.findIndex((l) => /^#+\s.*Node\.js versions/i.test(l));
  if (heading < 0) throw new Error(`${file}: no "Node.js versions" heading`);
  const start = lines.findIndex((l, i) => i > heading && l.trim().startsWith('|'));
  const rows: string[][] = [];
  for (let i = start; i < lines.length && lines[i].trim().startsWith('|'); i++) {
    rows.push(
      lines[i]
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((c) => c.trim()),
    );
  }
  const [header, , ...body] = rows;
  const col = (name: RegExp): number => {
    const i = header.findIndex((h) => name.test(h));
    if (i < 0) throw new Error(`${file}: the Node.js table has no ${name} column`);
    return i;
  };
  const c = { major: col(/^Node/), status: col(/status/i), host: col(/host/i), image: col(/image/i), tested: col(/tested/i) };
  const yes = (cell: string): boolean => /^yes\b/i.test(cell);
  return body.map((r) => ({ major: Number(/\d+/.exec(r[c.major])?.[0]), status: r[c.status], host: yes(r[c.host]), image: yes(r[c.image]), tested: yes(r[c.tested]) }));
}
