import { stringify } from 'yaml';

/** How the `yaml` package is asked to write objects: no line folding, keys in the renderers' order. */
const OPTIONS = { lineWidth: 0, sortMapEntries: false } as const;

/**
 * A name, label or quantity: characters no YAML indicator uses, beginning
 * with a letter, digit, `/`, `_` or `:` (IPv6 ranges) and not ending with
 * `:`, so nowhere can it start or end a YAML token.
 */
const PLAIN = /^(?!:$)[A-Za-z0-9/_:](?:[A-Za-z0-9._/:@=+-]*[A-Za-z0-9._/@=+-])?$/;
/**
 * What a YAML 1.2 (core schema) reader takes for null, a boolean or a number,
 * as the `yaml` package tests it: such a string is quoted.
 */
const NOT_A_STRING = new RegExp(
  '^(?:' +
    ['~|[Nn]ull|NULL|', '[Tt]rue|TRUE|[Ff]alse|FALSE', '0o[0-7]+', '[-+]?[0-9]+', '0x[0-9a-fA-F]+', '[-+]?\\.(?:inf|Inf|INF)|\\.nan|\\.NaN|\\.NAN',
      '[-+]?(?:\\.[0-9]+|[0-9]+(?:\\.[0-9]*)?)[eE][-+]?[0-9]+', '[-+]?(?:\\.[0-9]+|[0-9]+\\.[0-9]*)'].join('|') +
    ')$',
);
/** One line of printable ASCII: what the `yaml` package writes either plain or in quotes, the same wherever it stands. */
const ASCII_LINE = /^[\x20-\x7e]*$/;
/** Where a plain scalar could not stand, by the `yaml` package's own test: an indicator first, `: ` or ` #` within, a space or `:` last. */
const NEEDS_QUOTES = /^[\n\t ,[\]{}#&*!|>'"%@`]|^[?-]$|^[?-][ \t]|[\n:][ \t]|[ \t]\n|[\n\t ]#|[\n\t :]$/;
/** Characters the `yaml` package escapes in double quotes wherever they are. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u{D800}-\u{DFFF}]/u;

/** Raised inside {@link fastDocument} for anything its fast paths do not cover; the document is then written by the `yaml` package. */
class Unusual extends Error {}

function scalar(value: unknown, blockIndent: string): string {
  switch (typeof value) {
    case 'string':
      if (PLAIN.test(value)) return NOT_A_STRING.test(value) ? `"${value}"` : value;
      // a line of text: plain unless that would read as something else; quoted as the package quotes (JSON's escapes suffice for ASCII)
      if (ASCII_LINE.test(value) && !/^(?:---|\.\.\.)/.test(value)) {
        if (!NEEDS_QUOTES.test(value) && !NOT_A_STRING.test(value)) return value;
        return value.includes('"') && !value.includes("'") ? `'${value}'` : JSON.stringify(value);
      }
      // a multi-line string with one final newline and nothing the `yaml` package treats specially: a literal block, clipped
      if (value.endsWith('\n') && !/[\n\t ]/.test(value.at(-2) ?? ' ') && !/^[\n ]/.test(value) && !CONTROL.test(value)) {
        return `|\n${blockIndent}${value.slice(0, -1).replace(/\n+/g, `$&${blockIndent}`)}`;
      }
      throw new Unusual();
    case 'number':
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) return String(value);
      throw new Unusual();
    case 'boolean':
      return String(value);
    default:
      if (value === null) return 'null';
      throw new Unusual();
  }
}

/** A mapping's key: a plain name (one over 1,024 characters the package writes as an explicit `? ` key). */
function key(k: string): string {
  if (k.length <= 1024 && PLAIN.test(k) && !NOT_A_STRING.test(k)) return k;
  throw new Unusual();
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A collection the `yaml` package writes in flow style, `[]` or `{}` (a mapping's undefined values are left out). */
function isEmpty(v: unknown[] | Record<string, unknown>): boolean {
  if (Array.isArray(v)) return v.length === 0;
  for (const k in v) if (v[k] !== undefined) return false;
  return true;
}

/**
 * Appends a mapping's lines at `indent`, the first beginning with `first`
 * instead (a sequence item's dash). Sequences are indented under their key,
 * as the `yaml` package writes them.
 */
function writeMap(o: Record<string, unknown>, indent: string, first: string, out: string[]): void {
  const inner = `${indent}  `;
  let prefix = first;
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (v === undefined) continue;
    const head = `${prefix}${key(k)}:`;
    prefix = indent;
    if (Array.isArray(v) || isMap(v)) {
      if (isEmpty(v)) out.push(`${head} ${Array.isArray(v) ? '[]' : '{}'}`);
      else {
        out.push(head);
        if (Array.isArray(v)) writeSeq(v, inner, inner, out);
        else writeMap(v, inner, inner, out);
      }
    } else out.push(`${head} ${scalar(v, inner)}`);
  }
}

/** Appends a sequence's lines at `indent`, the first beginning with `first`: a collection item starts on its dash's line. */
function writeSeq(a: unknown[], indent: string, first: string, out: string[]): void {
  const inner = `${indent}  `;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    const dash = `${i === 0 ? first : indent}- `;
    if (Array.isArray(v) || isMap(v)) {
      if (isEmpty(v)) out.push(`${dash}${Array.isArray(v) ? '[]' : '{}'}`);
      else if (Array.isArray(v)) writeSeq(v, inner, dash, out);
      else writeMap(v, inner, dash, out);
    } else out.push(`${dash}${scalar(v, inner)}`);
  }
}

/** One object as YAML exactly as the `yaml` package writes it, when the fast paths cover every value in it; undefined otherwise. */
export function fastDocument(o: Record<string, unknown>): string | undefined {
  if (isEmpty(o)) return undefined;
  // lines joined once per document: one flat string, where appending each piece would leave a tree of millions of
  // pieces for the collector to keep until the whole stream is joined (it took three times as long)
  const lines: string[] = [];
  try {
    writeMap(o, '', '', lines);
    lines.push('');
    return lines.join('\n');
  } catch (err) {
    if (err instanceof Unusual) return undefined;
    throw err;
  }
}

/**
 * Plain JSON data (objects of strings, safe integers, booleans, null) as a
 * YAML document, byte for byte what `stringify(o, OPTIONS)` of the `yaml`
 * package writes (yaml.test.ts holds it to that). The renderers' objects
 * take the fast paths here: names, labels, quantities, lines of ASCII text,
 * multi-line strings as literal blocks. A document holding anything else
 * (non-ASCII text, a fraction, a key that needs quotes) is written by the
 * package itself. The package builds a syntax tree of every document first:
 * for the 48,000 objects of 10,000 workspaces it took about 9 s on the
 * reference machine, this about 0.5 s (bench/render).
 */
export function yamlDocument(o: Record<string, unknown>): string {
  return fastDocument(o) ?? stringify(o, OPTIONS);
}
