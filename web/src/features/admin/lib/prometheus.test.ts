// Tests for the Prometheus text-format parser.
import { describe, expect, it } from 'vitest';
import { parsePrometheus, parseValue } from './prometheus';

describe('parseValue', () => {
  it('reads floats and the special values', () => {
    expect(parseValue('1')).toBe(1);
    expect(parseValue('-2.5e-3')).toBe(-0.0025);
    expect(parseValue('.5')).toBe(0.5);
    expect(parseValue('+Inf')).toBe(Infinity);
    expect(parseValue('Inf')).toBe(Infinity);
    expect(parseValue('-Inf')).toBe(-Infinity);
    expect(parseValue('NaN')).toBeNaN();
    expect(() => parseValue('abc')).toThrow();
  });
});

describe('parsePrometheus', () => {
  it('reads comments, types, labels, histograms and timestamps', () => {
    const text = [
      '# HELP http_requests_total Requests served.\\nSecond line',
      '# TYPE http_requests_total counter',
      'http_requests_total{method="GET",route="/a",status="200"} 12',
      'http_requests_total{method="POST",route="/b",status="500",} 3 1700000000000',
      '# a free comment',
      '',
      '# TYPE http_request_duration_seconds histogram',
      'http_request_duration_seconds_bucket{route="/a",le="0.1"} 4',
      'http_request_duration_seconds_bucket{route="/a",le="+Inf"} 5',
      'http_request_duration_seconds_sum{route="/a"} 0.75',
      'http_request_duration_seconds_count{route="/a"} 5',
      'up 1',
      'temperature NaN',
    ].join('\n');
    const parsed = parsePrometheus(text);
    expect(parsed.errors).toBe(0);
    expect(parsed.types).toEqual({ http_requests_total: 'counter', http_request_duration_seconds: 'histogram' });
    expect(parsed.help.http_requests_total).toBe('Requests served.\nSecond line');
    expect(parsed.samples).toHaveLength(8);
    expect(parsed.samples[0]).toEqual({
      name: 'http_requests_total',
      labels: { method: 'GET', route: '/a', status: '200' },
      value: 12,
    });
    expect(parsed.samples[1]).toMatchObject({ labels: { status: '500' }, value: 3, timestamp: 1700000000000 });
    expect(parsed.samples[3]).toMatchObject({ name: 'http_request_duration_seconds_bucket', labels: { le: '+Inf' }, value: 5 });
    expect(parsed.samples[6]).toEqual({ name: 'up', labels: {}, value: 1 });
    expect(parsed.samples[7]!.value).toBeNaN();
  });

  it('unescapes quotes, backslashes and newlines in label values', () => {
    const parsed = parsePrometheus('m{path="say \\"hi\\"",dir="C:\\\\tmp",msg="a\\nb", sp = "x y"} 1\r\n');
    expect(parsed.samples[0]!.labels).toEqual({ path: 'say "hi"', dir: 'C:\\tmp', msg: 'a\nb', sp: 'x y' });
  });

  it('keeps braces and commas inside label values', () => {
    const parsed = parsePrometheus('m{route="/api/projects/{id}",q="a,b}"} 2');
    expect(parsed.samples[0]!.labels).toEqual({ route: '/api/projects/{id}', q: 'a,b}' });
  });

  it('skips malformed lines and counts them', () => {
    const parsed = parsePrometheus('good 1\nbad{a="x} 2\nworse 1 2 3\nnovalue\n{x="1"} 3\nfine{} -Inf');
    expect(parsed.samples.map((s) => s.name)).toEqual(['good', 'fine']);
    expect(parsed.samples[1]!.value).toBe(-Infinity);
    expect(parsed.errors).toBe(4);
  });
});
