// URLs in narrative attributes (href, cite, longdesc; src on img), checked after character
// references are decoded and after doing to the value what a browser's URL parser does
// first (WHATWG URL: strip leading and trailing C0 controls and spaces, remove every tab and
// newline), so that 'java&#x09;script:', ' javascript:' and '\x01javascript:' are all read
// as the 'javascript:' a browser would follow.
//
// Links may be relative (FHIR references such as 'Patient/123', '#fragment', 'page.html')
// or use one of the schemes below; every other scheme is refused (javascript:, vbscript:,
// data:, file:, ...). A ':' before any '/', '?' or '#' makes the text before it a scheme,
// so a value the allow-list does not name is refused even when a browser might read it as
// a relative path. Images must be inside the resource: a fragment naming a contained
// resource or attachment ('#photo'), or an inline raster data: URL; FHIR narrative loads
// nothing from elsewhere.

/** URL schemes a narrative link may use. */
export const LINK_SCHEMES: ReadonlySet<string> = new Set(['http', 'https', 'mailto', 'tel', 'urn']);

/** Image types an inline `data:` URL in img/@src may carry (no SVG, which can hold script). */
const INLINE_IMAGE_RE = /^data:image\/(?:png|gif|jpeg|webp|bmp)(?:;[a-z0-9=._+-]+)*,/i;

const SCHEME_RE = /^([^/?#]*?):/;
const CONTROL_RE = /[\x00-\x1F\x7F-\x9F]/;

/** What a browser's URL parser starts from. */
function browserView(value: string): string {
  return value.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, '').replace(/[\t\n\r]/g, '');
}

/** Checks a decoded URL attribute value; returns a diagnostic or undefined. */
export function checkUrl(element: string, attr: string, value: string): string | undefined {
  const url = browserView(value);
  if (CONTROL_RE.test(url)) return `a control character inside the URL in '${attr}'`;
  if (element === 'img' && attr === 'src') {
    if (url.startsWith('#') || INLINE_IMAGE_RE.test(url)) return undefined;
    return 'an image must be contained (src="#id") or an inline raster image (data:image/png, gif, jpeg, webp or bmp), not loaded from elsewhere';
  }
  const m = SCHEME_RE.exec(url);
  if (m && !LINK_SCHEMES.has(m[1].toLowerCase())) {
    const scheme = m[1].length > 20 ? `${m[1].slice(0, 20)}...` : m[1];
    return `the URL scheme '${scheme}:' is not allowed in '${attr}' (allowed: relative URLs, #fragments, ${[...LINK_SCHEMES].join(':, ')}:)`;
  }
  return undefined;
}
