/**
 * The first member name that occurs twice in one object of a JSON text, or undefined. JSON.parse keeps the last of
 * them silently, so `{"dry_run":true,"dry_run":false}` ran a real retention pass (found from outside); RFC 8259 leaves
 * such objects' meaning open, and a request that says two things is refused instead. Names are compared decoded
 * (`"a"` and `"\u0061"` are one name). `text` must be valid JSON (call it after JSON.parse succeeded): the scanner
 * only follows strings, objects and arrays. A hand-written scan of a few lines rather than a parser dependency
 * (docs/decisions.md, libraries).
 */
export function duplicateMemberOf(text: string): string | undefined {
  // One entry per open object (its names so far) or array (null).
  const open: (Set<string> | null)[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const end = j + 1;
      let k = end;
      while (k < text.length && (text[k] === ' ' || text[k] === '\t' || text[k] === '\n' || text[k] === '\r')) k++;
      const names = open[open.length - 1];
      if (text[k] === ':' && names) {
        const name = JSON.parse(text.slice(i, end)) as string;
        if (names.has(name)) return name;
        names.add(name);
      }
      i = end;
      continue;
    }
    if (c === 0x7b /* { */) open.push(new Set());
    else if (c === 0x5b /* [ */) open.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) open.pop();
    i++;
  }
  return undefined;
}

/** What an offline check says of a file that gives a member twice (a signed answer, a retention report). */
export function givenTwiceProblem(name: string): string {
  return `the file gives ${JSON.stringify(name)} twice in one object: a reader may see either value`;
}
