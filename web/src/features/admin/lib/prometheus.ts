// A small parser for the Prometheus text exposition format (version 0.0.4): `# TYPE`/`# HELP`
// comments, samples with labels (escaped quotes, backslashes, newlines), NaN and ±Inf values.

export type Labels = Record<string, string>;
export type Sample = { name: string; labels: Labels; value: number; timestamp?: number };
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped' | (string & {});
export type Exposition = { samples: Sample[]; types: Record<string, MetricType>; help: Record<string, string> };

/** Parses a sample value: a float, or `NaN`, `+Inf`, `-Inf` (`Inf` too). */
export function parseValue(text: string): number {
  switch (text) {
    case 'NaN':
      return Number.NaN;
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`bad value ${JSON.stringify(text)}`);
  return Number(text);
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}

/** Reads `{a="x",b="y\"z"}` starting at `start` (the `{`); the labels and the index after `}`. */
function readLabels(line: string, start: number): { labels: Labels; end: number } {
  const labels: Labels = {};
  let i = start + 1;
  const skipSpaces = () => {
    while (line[i] === ' ' || line[i] === '\t') i++;
  };
  for (;;) {
    skipSpaces();
    if (line[i] === '}') return { labels, end: i + 1 };
    const nameMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (!nameMatch) throw new Error('bad label name');
    const name = nameMatch[0];
    i += name.length;
    skipSpaces();
    if (line[i] !== '=') throw new Error('expected =');
    i++;
    skipSpaces();
    if (line[i] !== '"') throw new Error('expected "');
    i++;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new Error('unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const next = line[i + 1];
        value += next === 'n' ? '\n' : next === '"' ? '"' : next === '\\' ? '\\' : `\\${next ?? ''}`;
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    i++; // closing quote
    labels[name] = value;
    skipSpaces();
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error('expected , or }');
  }
}

/**
 * Parses a whole exposition. Lines that cannot be read are skipped (a scrape should not fail on
 * one odd line); `errors` counts them.
 */
export function parsePrometheus(text: string): Exposition & { errors: number } {
  const samples: Sample[] = [];
  const types: Record<string, MetricType> = {};
  const help: Record<string, string> = {};
  let errors = 0;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s*(TYPE|HELP)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(line);
      if (m?.[1] === 'TYPE') types[m[2]!] = (m[3] ?? 'untyped').trim();
      else if (m?.[1] === 'HELP') help[m[2]!] = unescapeHelp(m[3] ?? '');
      continue;
    }
    try {
      const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
      if (!nameMatch) throw new Error('bad metric name');
      const name = nameMatch[0];
      let i = name.length;
      let labels: Labels = {};
      if (line[i] === '{') {
        const read = readLabels(line, i);
        labels = read.labels;
        i = read.end;
      }
      const rest = line.slice(i).trim().split(/\s+/);
      if (rest.length < 1 || rest.length > 2 || rest[0] === '') throw new Error('bad sample');
      const sample: Sample = { name, labels, value: parseValue(rest[0]!) };
      if (rest[1] !== undefined) {
        const ts = Number(rest[1]);
        if (!Number.isFinite(ts)) throw new Error('bad timestamp');
        sample.timestamp = ts;
      }
      samples.push(sample);
    } catch {
      errors++;
    }
  }
  return { samples, types, help, errors };
}
