/**
 * The Sec-WebSocket-Extensions header grammar (RFC 6455 9.1): parse and format.
 *
 *   extension-list  = 1#extension
 *   extension       = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" (token | quoted-string) ]
 *
 * Negotiation of a particular extension (permessage-deflate) lives elsewhere;
 * this module only knows the syntax.
 */
import { HandshakeError } from './errors.js';

export interface ExtensionOffer {
  name: string;
  /** Parameter name -> value; `true` for a parameter with no value. Repeats are kept in order. */
  params: Array<[string, string | true]>;
}

// RFC 7230 tchar
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

function bad(header: string, why: string): HandshakeError {
  return new HandshakeError('WS_ERR_INVALID_EXTENSION_HEADER', 400, `Invalid Sec-WebSocket-Extensions header (${why}): ${JSON.stringify(header)}`);
}

/** Parses one or more header values (multiple header lines are joined by the caller with ','). Throws HandshakeError(400) on bad syntax. */
export function parseExtensionHeader(header: string): ExtensionOffer[] {
  const out: ExtensionOffer[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  skipWs();
  if (i >= n) return out;
  for (;;) {
    skipWs();
    const name = readToken();
    if (!name) throw bad(header, `expected extension token at ${i}`);
    const offer: ExtensionOffer = { name, params: [] };
    skipWs();
    while (i < n && header[i] === ';') {
      i++;
      skipWs();
      const pname = readToken();
      if (!pname) throw bad(header, `expected parameter token at ${i}`);
      skipWs();
      let value: string | true = true;
      if (header[i] === '=') {
        i++;
        skipWs();
        if (header[i] === '"') {
          i++;
          let v = '';
          for (;;) {
            if (i >= n) throw bad(header, 'unterminated quoted-string');
            const c = header[i]!;
            if (c === '"') { i++; break; }
            if (c === '\\') {
              i++;
              if (i >= n) throw bad(header, 'unterminated quoted-string');
            }
            v += header[i]!;
            i++;
          }
          // RFC 6455 9.1: a quoted-string value must, once unescaped, be a token.
          if (!TOKEN.test(v)) throw bad(header, `quoted parameter value is not a token: ${JSON.stringify(v)}`);
          value = v;
        } else {
          const v = readToken();
          if (!v) throw bad(header, `expected parameter value at ${i}`);
          value = v;
        }
        skipWs();
      }
      offer.params.push([pname, value]);
    }
    out.push(offer);
    skipWs();
    if (i >= n) return out;
    if (header[i] !== ',') throw bad(header, `unexpected character ${JSON.stringify(header[i])} at ${i}`);
    i++;
    skipWs();
    // Tolerate empty list elements (RFC 7230 7: "#rule" allows them).
    while (i < n && header[i] === ',') { i++; skipWs(); }
    if (i >= n) return out;
  }
}

/** Formats offers back into a header value. */
export function formatExtensionHeader(offers: ExtensionOffer[]): string {
  return offers
    .map((o) => [o.name, ...o.params.map(([k, v]) => (v === true ? k : `${k}=${v}`))].join('; '))
    .join(', ');
}
