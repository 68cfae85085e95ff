// Tests for the API client: problem+json parsing, Retry-After, field-error
// splitting, request headers and the 401 hook.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  apiRequest,
  errorFromResponse,
  errorMessage,
  newIdempotencyKey,
  parseRetryAfter,
  problemFromBody,
  setUnauthorizedHandler,
  splitFieldErrors,
} from './api';

function problemResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/problem+json', ...headers },
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
  setUnauthorizedHandler(null);
});

describe('problemFromBody', () => {
  it('keeps every member of a well-formed problem', () => {
    const p = problemFromBody(
      {
        type: 'https://trellis.example/problems/validation',
        title: 'Invalid input',
        status: 422,
        detail: 'The password is too short.',
        request_id: 'req-1',
        errors: [{ field: 'password', message: 'at least 15 characters' }],
      },
      422,
    );
    expect(p).toEqual({
      type: 'https://trellis.example/problems/validation',
      title: 'Invalid input',
      status: 422,
      detail: 'The password is too short.',
      request_id: 'req-1',
      errors: [{ field: 'password', message: 'at least 15 characters' }],
    });
  });

  it('falls back to a title for the status when the body is not an object', () => {
    expect(problemFromBody(undefined, 409)).toEqual({ type: 'about:blank', title: 'Conflict', status: 409 });
    expect(problemFromBody('oops', 503).title).toBe('Service unavailable');
    expect(problemFromBody(null, 599).title).toBe('Server error');
    expect(problemFromBody([], 418).title).toBe('Request failed');
  });

  it('trusts the HTTP status over a disagreeing body status', () => {
    expect(problemFromBody({ status: 200, title: 'x' }, 401).status).toBe(401);
  });

  it('drops malformed field errors and empty strings', () => {
    const p = problemFromBody(
      {
        title: '',
        detail: '   ',
        errors: [{ field: 'email', message: 'taken' }, { field: 3, message: 'x' }, 'nope', { field: 'name' }],
      },
      422,
    );
    expect(p.title).toBe('Invalid input');
    expect(p.detail).toBeUndefined();
    expect(p.errors).toEqual([{ field: 'email', message: 'taken' }]);
  });

  it('omits errors when none are valid', () => {
    expect(problemFromBody({ errors: [{}] }, 422).errors).toBeUndefined();
  });
});

describe('errorFromResponse', () => {
  it('parses application/problem+json', async () => {
    const err = await errorFromResponse(
      problemResponse(409, { type: 'about:blank', title: 'Conflict', status: 409, detail: 'Email taken', request_id: 'r9' }),
    );
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(409);
    expect(err.message).toBe('Email taken');
    expect(err.requestId).toBe('r9');
  });

  it('uses X-Request-Id when the body has none, and reads Retry-After', async () => {
    const err = await errorFromResponse(
      problemResponse(429, { title: 'Too many requests', status: 429 }, { 'X-Request-Id': 'hdr-1', 'Retry-After': '7' }),
    );
    expect(err.requestId).toBe('hdr-1');
    expect(err.retryAfter).toBe(7);
    expect(errorMessage(err)).toBe('Too many requests Try again in 7 seconds.');
  });

  it('survives a non-JSON error body', async () => {
    const err = await errorFromResponse(new Response('<h1>Bad Gateway</h1>', { status: 502, headers: { 'Content-Type': 'text/html' } }));
    expect(err.status).toBe(502);
    expect(err.problem.title).toBe('Server error');
  });

  it('survives a JSON content type with a broken body', async () => {
    const err = await errorFromResponse(new Response('{"title":', { status: 400, headers: { 'Content-Type': 'application/json' } }));
    expect(err.problem.title).toBe('Bad request');
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('errorMessage', () => {
  it('prefers detail over title', () => {
    expect(errorMessage(new ApiError({ type: 't', title: 'Unauthorized', status: 401, detail: 'invalid credentials' }))).toBe(
      'invalid credentials',
    );
    expect(errorMessage(new ApiError({ type: 't', title: 'Unauthorized', status: 401 }))).toBe('Unauthorized');
  });

  it('gives a generic sentence for unknown errors', () => {
    expect(errorMessage(new TypeError('x'))).toMatch(/something went wrong/i);
  });
});

describe('splitFieldErrors', () => {
  it('puts known fields beside inputs and the rest in the summary', () => {
    const { byField, other } = splitFieldErrors(
      [
        { field: 'password', message: 'too common' },
        { field: 'password', message: 'second message is dropped' },
        { field: '/email', message: 'invalid' },
        { field: 'body.name', message: 'required' },
        { field: 'captcha', message: 'missing' },
        { field: '', message: 'general problem' },
      ],
      ['email', 'password', 'name'] as const,
    );
    expect(byField).toEqual({ password: 'too common', email: 'invalid', name: 'required' });
    expect(other).toEqual(['captcha: missing', 'general problem']);
  });
});

describe('apiRequest', () => {
  it('sends JSON with the bearer token to the same-origin path', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ ok: true }), { status: 200, headers: { 'Content-Type': 'application/json' } }));
    vi.stubGlobal('fetch', fetchMock);
    const result = await apiRequest<{ ok: boolean }>('/api/projects', { method: 'POST', token: 'tok', body: { name: 'A' } });
    expect(result).toEqual({ ok: true });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/projects');
    expect(init.method).toBe('POST');
    expect(init.body).toBe('{"name":"A"}');
    const headers = init.headers as Record<string, string>;
    expect(headers.Authorization).toBe('Bearer tok');
    expect(headers['Content-Type']).toBe('application/json');
  });

  it('sends no Authorization or Content-Type when there is no token or body', async () => {
    const fetchMock = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal('fetch', fetchMock);
    await expect(apiRequest('/auth/logout')).resolves.toBeUndefined();
    const headers = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1].headers as Record<string, string>;
    expect(headers.Authorization).toBeUndefined();
    expect(headers['Content-Type']).toBeUndefined();
  });

  it('throws ApiError with field errors for a 422', async () => {
    vi.stubGlobal('fetch', async () =>
      problemResponse(422, { title: 'Invalid', status: 422, detail: 'Check the form', errors: [{ field: 'password', message: 'breached' }] }),
    );
    const err = await apiRequest('/auth/register', { method: 'POST', body: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).fieldErrors).toEqual([{ field: 'password', message: 'breached' }]);
  });

  it('turns a network failure into a status-0 ApiError', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch');
    });
    const err = await apiRequest('/api/projects').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(0);
  });

  it('calls the unauthorized handler on a 401 for an authenticated request only', async () => {
    const handler = vi.fn();
    setUnauthorizedHandler(handler);
    vi.stubGlobal('fetch', async () => problemResponse(401, { title: 'Unauthorized', status: 401 }));

    await apiRequest('/auth/login', { method: 'POST', body: {} }).catch(() => undefined);
    expect(handler).not.toHaveBeenCalled();

    await apiRequest('/auth/logout', { method: 'POST', token: 't', notifyUnauthorized: false }).catch(() => undefined);
    expect(handler).not.toHaveBeenCalled();

    await apiRequest('/api/projects', { token: 't' }).catch(() => undefined);
    expect(handler).toHaveBeenCalledTimes(1);
  });
});

describe('newIdempotencyKey', () => {
  it('is a UUID where the browser has randomUUID, and still unique without it', () => {
    expect(newIdempotencyKey()).toMatch(/^[0-9a-f-]{36}$/);
    vi.stubGlobal('crypto', {});
    try {
      const keys = new Set(Array.from({ length: 100 }, () => newIdempotencyKey()));
      expect(keys.size).toBe(100);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
