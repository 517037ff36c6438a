/**
 * Globs of the policy file, compiled to RegExps once at load time.
 *
 *   *        any run of characters (including none)
 *   ?        exactly one character
 *   [abc]    one of the listed characters; ranges [a-z]; [!abc] negates
 *   \x       x literally
 *
 * `{a,b}` is refused rather than taken literally: people write it expecting alternation, and a
 * pattern that silently never matches is worse than an error (use two list entries).
 * Dotted names (relations, functions, columns) are split on '.' before this, per part, so '*'
 * never has to decide whether it crosses a dot.
 */

/** Returns the RegExp source (without anchors) or throws Error with a human message. */
export function globSource(glob: string): string {
  if (glob.length === 0) throw new Error('empty pattern');
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      while (glob[i + 1] === '*') i++; // '**' means the same as '*'
      out += '.*';
    } else if (c === '?') {
      out += '.';
    } else if (c === '\\') {
      if (i + 1 >= glob.length) throw new Error(`bad glob "${glob}": trailing backslash`);
      out += escapeRe(glob[++i]);
    } else if (c === '[') {
      const negated = glob[i + 1] === '!';
      // A ']' right after '[' (or '[!') is a member, as in fnmatch, so the search starts past it.
      const close = glob.indexOf(']', i + (negated ? 3 : 2));
      if (close < 0) throw new Error(`bad glob "${glob}": unclosed '['`);
      const body = glob.slice(i + (negated ? 2 : 1), close);
      if (body.length === 0) throw new Error(`bad glob "${glob}": empty character class`);
      // Inside a class only '\', ']' and '^' need escaping for RegExp; '-' keeps its range meaning.
      out += `[${negated ? '^' : ''}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
      i = close;
    } else if (c === '{' || c === '}') {
      throw new Error(`bad glob "${glob}": braces are not supported (list the alternatives as separate entries)`);
    } else if (c === ']') {
      throw new Error(`bad glob "${glob}": unmatched ']'`);
    } else {
      out += escapeRe(c);
    }
  }
  return out;
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

export function isLiteralGlob(glob: string): boolean {
  return !/[*?[\]\\{}]/.test(glob);
}

/** Checks a glob's syntax; returns an error message or undefined. */
export function globProblem(glob: string): string | undefined {
  try {
    const src = globSource(glob);
    new RegExp(`^${src}$`); // a class like [z-a] is only caught by the RegExp engine
    return undefined;
  } catch (err) {
    const msg = (err as Error).message;
    return msg.startsWith('bad glob') ? msg : `bad glob "${glob}": ${msg}`;
  }
}

/**
 * A predicate for "matches any of these globs". Literal entries go to a Set, the rest into one
 * alternation, so a list of 50 names costs one lookup and at most one RegExp test.
 */
export function compileGlobList(globs: readonly string[], caseInsensitive = false): (value: string) => boolean {
  const literals = new Set<string>();
  const patterns: string[] = [];
  for (const g of globs) {
    if (isLiteralGlob(g)) literals.add(caseInsensitive ? g.toLowerCase() : g);
    else patterns.push(globSource(g));
  }
  const re = patterns.length === 0 ? undefined : new RegExp(`^(?:${patterns.join('|')})$`, caseInsensitive ? 'si' : 's');
  if (re === undefined) return caseInsensitive ? (v) => literals.has(v.toLowerCase()) : (v) => literals.has(v);
  if (literals.size === 0) return (v) => re.test(v);
  return caseInsensitive ? (v) => literals.has(v.toLowerCase()) || re.test(v) : (v) => literals.has(v) || re.test(v);
}
