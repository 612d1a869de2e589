// A JSON reading every parser agrees on, written here so the upstream oracles do not lean on
// fhirguard's own body reader: valid UTF-8, RFC 8259 grammar, no key twice in one object, no
// lone surrogate, no NUL, no number a double cannot hold exactly as written in digits that
// matter; a leading byte order mark is skipped. Returns why the bytes are ambiguous, or the parsed value.

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type StrictResult = { ok: true; value: unknown } | { ok: false; why: string };

export function readStrictJson(bytes: Buffer): StrictResult {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return { ok: false, why: 'not UTF-8' };
  }
  // A leading byte order mark: RFC 8259 lets readers skip it or refuse the text; none reads
  // the document differently because of it (fhirguard accepts it, docs/validation.md).
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let at = 0;
  const ws = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++;
  };
  const fail = (why: string): never => {
    throw new Error(`${why} at ${at}`);
  };
  const str = (): string => {
    at++; // opening quote
    let out = '';
    for (;;) {
      if (at >= text.length) fail('unterminated string');
      const c = text[at++];
      if (c === '"') return out;
      if (c < ' ') fail('control character in string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[at++];
      if (e === 'u') {
        const hex = text.slice(at, at + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
        at += 4;
        const code = parseInt(hex, 16);
        if (code === 0) fail('escaped NUL');
        if (code >= 0xd800 && code <= 0xdbff) {
          const low = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(text.slice(at, at + 6));
          if (!low) fail('lone surrogate');
          at += 6;
          out += String.fromCharCode(code, parseInt(low![1], 16));
        } else if (code >= 0xdc00 && code <= 0xdfff) fail('lone surrogate');
        else out += String.fromCharCode(code);
      } else if ('"\\/bfnrt'.includes(e)) out += JSON.parse(`"\\${e}"`) as string;
      else fail('bad escape');
    }
  };
  const value = (depth: number): void => {
    if (depth > 1000) fail('too deep');
    ws();
    const c = text[at];
    if (c === '{') {
      at++;
      const keys = new Set<string>();
      ws();
      if (text[at] === '}') return void at++;
      for (;;) {
        ws();
        if (text[at] !== '"') fail('expected key');
        const k = str();
        if (keys.has(k)) fail(`key '${k}' twice`);
        keys.add(k);
        ws();
        if (text[at++] !== ':') fail('expected colon');
        value(depth + 1);
        ws();
        const d = text[at++];
        if (d === '}') return;
        if (d !== ',') fail('expected , or }');
      }
    }
    if (c === '[') {
      at++;
      ws();
      if (text[at] === ']') return void at++;
      for (;;) {
        value(depth + 1);
        ws();
        const d = text[at++];
        if (d === ']') return;
        if (d !== ',') fail('expected , or ]');
      }
    }
    if (c === '"') return void str();
    const m = /^(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(at, at + 400));
    if (!m) fail('unexpected token');
    const tok = m![1];
    at += tok.length;
    if (/^-?\d/.test(tok)) {
      const n = Number(tok);
      if (!Number.isFinite(n)) fail(`number ${tok} overflows a double`);
      const digits = tok
        .replace(/[eE].*$/, '')
        .replace(/[-.]/g, '')
        .replace(/^0+/, '')
        .replace(/0+$/, '');
      if (digits.length > 17) fail(`number ${tok} has more digits than a double holds`);
    }
  };
  try {
    value(0);
    ws();
    if (at !== text.length) fail('bytes after the document');
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
  return { ok: true, value: JSON.parse(text) };
}
