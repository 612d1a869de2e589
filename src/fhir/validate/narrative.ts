// Narrative XHTML (Narrative.div): a well-formed fragment rooted in an XHTML <div>, using
// only the HTML subset FHIR allows (txt-1): no scripts, forms, frames or objects, no event
// attributes, no URL scheme that runs or loads anything, no stylesheet or image loaded from
// elsewhere; and some visible content (txt-2).
//
// A narrative is stored by an XML reader and shown by a browser's HTML parser, so what
// passes must read the same to both. htmlparser2's tokenizer (XML mode, entities left as
// typed) splits the text; every token must then start exactly where the previous one ended,
// with only the separators XML allows in between, so anything the tokenizer would have
// tolerated (unquoted or glued attributes, stray '<', junk in end tags, an unterminated
// tag) is refused rather than guessed at. Comments that an HTML parser would end early,
// CDATA sections (a bogus comment to HTML, ending at the first '>'), processing
// instructions and declarations are refused, since each is a place where the two readers
// disagree on where markup starts. Attribute values are decoded (narrative-text.ts) before
// URLs (narrative-url.ts) and styles (narrative-style.ts) are judged.

import { QuoteType, Tokenizer, type TokenizerCallbacks } from 'htmlparser2';
import { decodeCharacterData } from './narrative-text';
import { checkUrl } from './narrative-url';
import { checkStyle } from './narrative-style';

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

/** Attributes holding a URL. */
const URL_ATTRIBUTES: ReadonlySet<string> = new Set(['href', 'src', 'cite', 'longdesc']);

const WHITESPACE_RE = /^[ \t\r\n]*$/;
const SEPARATOR_RE = /^[ \t\r\n]+$/;
const EQUALS_RE = /^[ \t\r\n]*=[ \t\r\n]*$/;
const END_TAG_TAIL_RE = /[ \t\r\n]*>/y;

export interface NarrativeProblem {
  /** txt-1 (content rules) or txt-2 (no visible content). */
  key: 'txt-1' | 'txt-2';
  diagnostics: string;
}

/** Thrown from inside the tokenizer's callbacks to stop at the first problem. */
class Refusal {
  constructor(readonly diagnostics: string) {}
}

function refuse(diagnostics: string): never {
  throw new Refusal(diagnostics);
}

/** Checks one Narrative.div value; returns the first problem found. */
export function checkXhtml(xhtml: string): NarrativeProblem | undefined {
  // One tokenizer for all calls (a check runs to completion synchronously), reset each time
  // since a refusal leaves it mid-document.
  scan.reset(xhtml);
  tokenizer.reset();
  try {
    tokenizer.write(xhtml);
    tokenizer.end();
  } catch (err) {
    if (err instanceof Refusal) return { key: 'txt-1', diagnostics: err.diagnostics };
    throw err;
  }
  if (!scan.visible) return { key: 'txt-2', diagnostics: 'the narrative has no visible content' };
  return undefined;
}

/** The tokenizer's callbacks: accounts for every character of the input, in order. */
class NarrativeScan implements TokenizerCallbacks {
  private src = '';
  /** Everything before this index has been accepted. */
  private pos = 0;
  private readonly stack: string[] = [];
  private rootSeen = false;
  visible = false;
  /** The start tag being read: its name, attributes so far, and the pending attribute. */
  private tag: string | undefined;
  private readonly attrNames: string[] = [];
  private attrCount = 0;
  private xmlns: string | undefined;
  private hasSrc = false;
  private attr: string | undefined;
  private attrValue: string | undefined;
  private attrValueStart = -1;

  reset(src: string): void {
    this.src = src;
    this.pos = 0;
    this.stack.length = 0;
    this.rootSeen = false;
    this.visible = false;
    this.tag = undefined;
    this.attr = undefined;
  }

  private expectGap(from: number, to: number, re: RegExp, what: string): void {
    if (to < from || !re.test(this.src.slice(from, to))) refuse(what);
  }

  ontext(start: number, end: number): void {
    if (start !== this.pos) refuse('malformed markup');
    const raw = this.src.slice(start, end);
    this.pos = end;
    if (this.stack.length === 0) {
      if (!WHITESPACE_RE.test(raw)) refuse(raw.includes('<') ? "a '<' that does not start a tag (write &lt;)" : 'text outside the root <div>');
      return;
    }
    if (raw.includes('<')) refuse("a '<' that does not start a tag (write &lt;)");
    if (raw.includes(']]>')) refuse("']]>' in text");
    const decoded = decodeCharacterData(raw);
    if (decoded.problem) refuse(`in text: ${decoded.problem}`);
    if (!this.visible && raw.trim()) this.visible = true;
  }

  ontextentity(): void {
    // Not called: entities are left as typed and decoded by decodeCharacterData.
  }

  onopentagname(start: number, end: number): void {
    if (this.src.charCodeAt(this.pos) !== 0x3c /* < */ || start !== this.pos + 1) refuse('malformed markup');
    const name = this.src.slice(start, end);
    this.pos = end;
    if (!ELEMENTS.has(name)) refuse(`element <${name.slice(0, 40)}> is not allowed in narrative`);
    if (this.stack.length === 0) {
      if (this.rootSeen) refuse('more than one root element');
      if (name !== 'div') refuse('the narrative root element must be <div>');
      this.rootSeen = true;
    }
    this.tag = name;
    this.attrCount = 0;
    this.xmlns = undefined;
    this.hasSrc = false;
  }

  onattribname(start: number, end: number): void {
    const tag = this.tag as string;
    this.expectGap(this.pos, start, SEPARATOR_RE, `malformed attribute on <${tag}>`);
    const name = this.src.slice(start, end);
    this.pos = end;
    if (!ATTRIBUTES.has(name)) {
      refuse(/^on/i.test(name) ? `event attribute '${name.slice(0, 40)}' is not allowed` : `attribute '${name.slice(0, 40)}' is not allowed on <${tag}>`);
    }
    for (let k = 0; k < this.attrCount; k++) if (this.attrNames[k] === name) refuse(`attribute '${name}' repeated on <${tag}>`);
    this.attr = name;
    this.attrValue = undefined;
  }

  onattribdata(start: number, end: number): void {
    if (this.attrValue === undefined) {
      // The first piece: after '=' and the opening quote.
      const quote = this.src[start - 1];
      if (quote !== '"' && quote !== "'") refuse(`the value of '${this.attr}' on <${this.tag}> must be quoted`);
      this.expectGap(this.pos, start - 1, EQUALS_RE, `malformed attribute '${this.attr}' on <${this.tag}>`);
      this.attrValueStart = start;
      this.attrValue = '';
    } else if (start !== this.pos) {
      refuse('malformed markup');
    }
    this.pos = end;
    this.attrValue = this.src.slice(this.attrValueStart, end);
  }

  onattribentity(): void {
    // Not called: entities are left as typed.
  }

  onattribend(quote: QuoteType, endIndex: number): void {
    const tag = this.tag as string;
    const name = this.attr as string;
    if (quote !== QuoteType.Double && quote !== QuoteType.Single) refuse(`the value of '${name}' on <${tag}> must be quoted`);
    // The tokenizer reports data for every quoted value, empty ones included.
    if (this.attrValue === undefined || endIndex - 1 !== this.pos) refuse(`malformed attribute '${name}' on <${tag}>`);
    this.pos = endIndex;
    const raw = this.attrValue;
    if (raw.includes('<')) refuse(`a '<' in the value of '${name}' (write &lt;)`);
    const decoded = decodeCharacterData(raw);
    if (decoded.problem !== undefined) refuse(`in '${name}' on <${tag}>: ${decoded.problem}`);
    const value = decoded.value;
    const problem = URL_ATTRIBUTES.has(name) ? checkUrl(tag, name, value) : name === 'style' ? checkStyle(value) : undefined;
    if (problem) refuse(`${problem} (on <${tag}>)`);
    if (name === 'xmlns') {
      if (value !== XHTML_NS) refuse(`xmlns must be "${XHTML_NS}"`);
      this.xmlns = value;
    } else if (name === 'src' && value) {
      this.hasSrc = true;
    }
    this.attrNames[this.attrCount++] = name;
    this.attr = undefined;
  }

  private endStartTag(endIndex: number): void {
    if (this.src.charCodeAt(endIndex) !== 0x3e /* > */) refuse(`malformed start tag <${this.tag}>`);
    const name = this.tag as string;
    if (this.stack.length === 0 && this.xmlns === undefined) refuse(`the root <div> must declare xmlns="${XHTML_NS}"`);
    if (name === 'img' && this.hasSrc) this.visible = true;
    this.pos = endIndex + 1;
    this.tag = undefined;
  }

  onopentagend(endIndex: number): void {
    this.expectGap(this.pos, endIndex, WHITESPACE_RE, `malformed start tag <${this.tag}>`);
    const name = this.tag as string;
    this.endStartTag(endIndex);
    this.stack.push(name);
  }

  onselfclosingtag(endIndex: number): void {
    this.expectGap(this.pos, endIndex, /^[ \t\r\n]*\/$/, `malformed start tag <${this.tag}>`);
    this.endStartTag(endIndex);
  }

  onclosetag(start: number, end: number): void {
    if (start !== this.pos + 2 || !this.src.startsWith('</', this.pos)) refuse('malformed end tag');
    const name = this.src.slice(start, end);
    END_TAG_TAIL_RE.lastIndex = end;
    if (!END_TAG_TAIL_RE.test(this.src)) refuse('malformed end tag');
    this.pos = END_TAG_TAIL_RE.lastIndex;
    const open = this.stack.pop();
    if (open !== name) refuse(open === undefined ? `end tag </${name.slice(0, 40)}> without a start tag` : `end tag </${name.slice(0, 40)}> does not match the open element <${open}>`);
  }

  oncomment(start: number, endIndex: number, endOffset: number): void {
    if (start !== this.pos + 4 || !this.src.startsWith('<!--', this.pos)) refuse('malformed comment');
    const body = this.src.slice(start, endIndex - endOffset);
    // XML forbids '--' inside and '-' at the end; HTML ends a comment at '<!-->', '<!--->' or
    // '--!>'; either way the rest would be read as markup by one reader and not the other.
    if (body.includes('--') || body.endsWith('-') || body.startsWith('>') || body.startsWith('->') || /[<>]/.test(body)) {
      refuse("a comment containing '--', '<' or '>' is not allowed");
    }
    this.pos = endIndex + 1;
  }

  oncdata(): void {
    refuse('CDATA sections are not allowed (HTML reads them as a comment ending at the first >)');
  }

  onprocessinginstruction(): void {
    refuse('DOCTYPE declarations and processing instructions are not allowed');
  }

  ondeclaration(): void {
    refuse('DOCTYPE declarations and processing instructions are not allowed');
  }

  onend(): void {
    if (this.tag !== undefined) refuse(`malformed start tag <${this.tag}>`);
    if (this.pos !== this.src.length) refuse(this.src.slice(this.pos).includes('<') ? 'unterminated markup' : 'malformed markup');
    if (this.stack.length) refuse(`element <${this.stack[this.stack.length - 1]}> is not closed`);
    if (!this.rootSeen) refuse('the narrative must be a <div> element');
  }
}

const scan = new NarrativeScan();
const tokenizer = new Tokenizer({ xmlMode: true, decodeEntities: false }, scan);
