// Reads the single-use token that mailed links carry in the URL fragment (`#token=…`), so it
// never reaches server logs or the Referer header.

/**
 * The `token` parameter of a fragment such as `token=abc` or `#a=1&token=abc`, percent-decoded
 * (a `+` stays a `+`), or null when it is absent, empty, malformed or contains whitespace.
 */
export function parseFragmentToken(hash: string): string | null {
  const fragment = hash.replace(/^#/, '');
  for (const part of fragment.split('&')) {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (name !== 'token') continue;
    let value: string;
    try {
      value = decodeURIComponent(eq === -1 ? '' : part.slice(eq + 1));
    } catch {
      return null;
    }
    value = value.trim();
    if (value === '' || /\s/.test(value)) return null;
    return value;
  }
  return null;
}
