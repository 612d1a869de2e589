// Inline CSS in narrative `style` attributes (txt-1 allows "internally contained style
// attributes"), checked after character references are decoded. A style may format; it may
// not load anything (url(), image-set(), @import), run anything (IE's expression() and
// behavior, Firefox's -moz-binding) or hide what it says from this check. So, before any
// pattern is matched, the value is NFKC-normalised (IE read fullwidth 'ｅｘｐｒｅｓｓｉｏｎ' as
// 'expression') and lower-cased, and the shapes that would need decoding are refused
// outright: CSS escapes ('\75 rl(' is 'url('), comments ('ur/**/l(' on old engines) and
// control characters. Then every function must be a colour function, and no at-rule or
// binding property may appear.

/** CSS functions a narrative style may call: colours only. */
const FUNCTIONS: ReadonlySet<string> = new Set(['rgb', 'rgba', 'hsl', 'hsla']);

const BINDING_RE = /(?:^|[;\s{])(?:-[a-z]+-)?(?:behavior|binding)\s*:/;
const CONTROL_RE = /[\x00-\x08\x0B\x0E-\x1F\x7F-\x9F]/;
const NON_ASCII_RE = /[^\x00-\x7F]/;

/** Checks a decoded style attribute value; returns a diagnostic or undefined. */
export function checkStyle(value: string): string | undefined {
  const css = (NON_ASCII_RE.test(value) ? value.normalize('NFKC') : value).toLowerCase();
  if (css.includes('\\')) return 'a CSS escape (\\) in a style is not allowed';
  if (css.includes('/*')) return 'a CSS comment in a style is not allowed';
  if (CONTROL_RE.test(css)) return 'a control character in a style is not allowed';
  if (css.includes('@')) return 'an at-rule (@import, ...) in a style is not allowed';
  if (css.includes('script:')) return 'a script URL in a style is not allowed';
  if (BINDING_RE.test(css)) return 'a style that binds behaviour (behavior, -moz-binding) is not allowed';
  for (let paren = css.indexOf('('); paren >= 0; paren = css.indexOf('(', paren + 1)) {
    const name = functionName(css, paren);
    if (!FUNCTIONS.has(name)) {
      return `the CSS function '${name.slice(0, 30)}(' is not allowed in a style (only ${[...FUNCTIONS].join('(), ')}()); nothing may be loaded or run`;
    }
  }
  return undefined;
}

/**
 * The name before the '(' at `paren` (whitespace between allowed), read backwards: a regex
 * searching for `name\s*\(` from every position would take quadratic time on a long name
 * that is not followed by '('. Each '(' either ends the check or has a short allowed name
 * before it, so the backward reads cover each character about once.
 */
function functionName(css: string, paren: number): string {
  let end = paren;
  while (end > 0 && /\s/.test(css[end - 1])) end--;
  let start = end;
  while (start > 0 && /[a-z0-9_-]/.test(css[start - 1])) start--;
  return css.slice(start, end);
}
