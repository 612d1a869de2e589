// Narrative XHTML (Narrative.div): a well-formed fragment rooted in an XHTML <div>, using
// only the HTML subset FHIR allows (txt-1): no scripts, forms, frames or objects, no event
// attributes, no stylesheet or image loaded from elsewhere; and some visible content (txt-2).
// A small tokenizer is enough: the subset has no DTD, no CDATA-sensitive elements, no
// implied end tags.

const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** Elements listed by txt-1. */
const ELEMENTS = new Set(
  (
    'a abbr acronym b big blockquote br caption cite code col colgroup dd dfn div dl dt em h1 h2 h3 h4 h5 h6 hr i img ' +
    'li ol p pre q samp small span strong sub sup table tbody td tfoot th thead tr tt ul var'
  ).split(' '),
);

/** Attributes listed by txt-1, plus the namespace and language attributes XML itself uses. */
const ATTRIBUTES = new Set(
  (
    'abbr accesskey align alt axis bgcolor border cellhalign cellpadding cellspacing cellvalign char charoff charset cite ' +
    'class colspan compact coords dir frame headers height href hreflang hspace id lang longdesc name nowrap rel rev ' +
    'rowspan rules scope shape span src start style summary tabindex title type valign value vspace width ' +
    'xmlns xml:lang xml:space'
  ).split(' '),
);

const NAME_RE = /[A-Za-z_][A-Za-z0-9_:.-]*/y;
const ATTR_RE = /\s*([A-Za-z_][A-Za-z0-9_:.-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/y;
const ENTITY_RE = /&(#[0-9]+|#x[0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);/y;

export interface NarrativeProblem {
  /** txt-1 (content rules) or txt-2 (no visible content). */
  key: 'txt-1' | 'txt-2';
  diagnostics: string;
}

/** Checks one Narrative.div value; returns the first problem found. */
export function checkXhtml(xhtml: string): NarrativeProblem | undefined {
  const stack: string[] = [];
  let rootSeen = false;
  let visible = false;
  let i = 0;
  const n = xhtml.length;
  const bad = (diagnostics: string): NarrativeProblem => ({ key: 'txt-1', diagnostics });

  while (i < n) {
    const lt = xhtml.indexOf('<', i);
    const textEnd = lt < 0 ? n : lt;
    if (textEnd > i) {
      const text = xhtml.slice(i, textEnd);
      if (stack.length === 0) {
        if (text.trim()) return bad('text outside the root <div>');
      } else {
        const problem = checkText(text);
        if (problem) return bad(problem);
        if (!visible && text.trim()) visible = true;
      }
    }
    if (lt < 0) break;
    i = lt;
    if (xhtml.startsWith('<!--', i)) {
      const end = xhtml.indexOf('-->', i + 4);
      if (end < 0) return bad('unterminated comment');
      i = end + 3;
      continue;
    }
    if (xhtml.startsWith('<![CDATA[', i)) {
      const end = xhtml.indexOf(']]>', i);
      if (end < 0 || stack.length === 0) return bad('misplaced or unterminated CDATA section');
      if (xhtml.slice(i + 9, end).trim()) visible = true;
      i = end + 3;
      continue;
    }
    if (xhtml[i + 1] === '!' || xhtml[i + 1] === '?') return bad('DOCTYPE declarations and processing instructions are not allowed');
    if (xhtml[i + 1] === '/') {
      NAME_RE.lastIndex = i + 2;
      const m = NAME_RE.exec(xhtml);
      const close = xhtml.indexOf('>', i);
      if (!m || close < 0 || xhtml.slice(NAME_RE.lastIndex, close).trim()) return bad('malformed end tag');
      if (stack.pop() !== m[0]) return bad(`end tag </${m[0]}> does not match the open element`);
      i = close + 1;
      continue;
    }
    // Start tag.
    NAME_RE.lastIndex = i + 1;
    const m = NAME_RE.exec(xhtml);
    if (!m) return bad("a '<' that does not start a tag (write &lt;)");
    const name = m[0];
    if (!ELEMENTS.has(name)) return bad(`element <${name}> is not allowed in narrative`);
    if (stack.length === 0) {
      if (rootSeen) return bad('more than one root element');
      if (name !== 'div') return bad('the narrative root element must be <div>');
      rootSeen = true;
    }
    let j = NAME_RE.lastIndex;
    const attrs = new Map<string, string>();
    for (;;) {
      ATTR_RE.lastIndex = j;
      const a = ATTR_RE.exec(xhtml);
      if (!a) break;
      const attr = a[1];
      const value = a[3] ?? a[4] ?? '';
      if (attrs.has(attr)) return bad(`attribute '${attr}' repeated on <${name}>`);
      if (!ATTRIBUTES.has(attr)) {
        return bad(/^on/i.test(attr) ? `event attribute '${attr}' is not allowed` : `attribute '${attr}' is not allowed on <${name}>`);
      }
      const problem = checkAttribute(name, attr, value);
      if (problem) return bad(problem);
      attrs.set(attr, value);
      j = ATTR_RE.lastIndex;
    }
    while (j < n && /\s/.test(xhtml[j])) j++;
    let selfClosing = false;
    if (xhtml[j] === '/' && xhtml[j + 1] === '>') {
      selfClosing = true;
      j += 2;
    } else if (xhtml[j] === '>') {
      j += 1;
    } else {
      return bad(`malformed start tag <${name}>`);
    }
    if (stack.length === 0 && attrs.get('xmlns') !== XHTML_NS) {
      return bad(`the root <div> must declare xmlns="${XHTML_NS}"`);
    }
    if (name === 'img' && attrs.get('src')) visible = true;
    if (!selfClosing) stack.push(name);
    i = j;
  }
  if (stack.length) return bad(`element <${stack[stack.length - 1]}> is not closed`);
  if (!rootSeen) return bad('the narrative must be a <div> element');
  if (!visible) return { key: 'txt-2', diagnostics: 'the narrative has no visible content' };
  return undefined;
}

function checkText(text: string): string | undefined {
  let amp = text.indexOf('&');
  while (amp >= 0) {
    ENTITY_RE.lastIndex = amp;
    if (!ENTITY_RE.exec(text)) return "a bare '&' in text (write &amp;)";
    amp = text.indexOf('&', ENTITY_RE.lastIndex);
  }
  if (text.includes('>') && /]]>/.test(text)) return "']]>' in text";
  return undefined;
}

/** Nothing the narrative shows may be fetched from elsewhere, nor run. */
function checkAttribute(element: string, attr: string, value: string): string | undefined {
  const v = value.trim().toLowerCase();
  if ((attr === 'href' || attr === 'src' || attr === 'longdesc' || attr === 'cite') && v.startsWith('javascript:')) {
    return `a javascript: URL in '${attr}' is not allowed`;
  }
  if (element === 'img' && attr === 'src' && !(v.startsWith('#') || v.startsWith('data:'))) {
    return 'an image must be contained (src="#id") or inline (data: URL), not loaded from elsewhere';
  }
  if (attr === 'style' && /url\s*\(|expression\s*\(|@import/i.test(value)) {
    return 'a style that loads or runs content (url(), expression(), @import) is not allowed';
  }
  return undefined;
}
