// HTTP client for the Trellis API: same-origin JSON requests, bearer auth and
// RFC 9457 problem+json error parsing into ApiError.

export type FieldError = { field: string; message: string };

/** An `application/problem+json` body, as the Trellis API sends it. */
export type Problem = {
  type: string;
  title: string;
  status: number;
  detail?: string;
  request_id?: string;
  errors?: FieldError[];
};

const FALLBACK_TITLES: Record<number, string> = {
  0: 'Cannot reach the server',
  400: 'Bad request',
  401: 'Not signed in',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict',
  412: 'Changed by someone else',
  413: 'Too large',
  415: 'Unsupported media type',
  422: 'Invalid input',
  429: 'Too many requests',
  500: 'Server error',
  503: 'Service unavailable',
};

function fallbackTitle(status: number): string {
  return FALLBACK_TITLES[status] ?? (status >= 500 ? 'Server error' : 'Request failed');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/**
 * Turns whatever an error response carried into a Problem. Tolerates missing
 * or malformed members: the HTTP status always wins over a body's `status`
 * that disagrees, and bad entries in `errors` are dropped.
 */
export function problemFromBody(body: unknown, status: number): Problem {
  const obj = isRecord(body) ? body : {};
  const problem: Problem = {
    type: nonEmptyString(obj.type) ?? 'about:blank',
    title: nonEmptyString(obj.title) ?? fallbackTitle(status),
    status,
  };
  const detail = nonEmptyString(obj.detail);
  if (detail) problem.detail = detail;
  const requestId = nonEmptyString(obj.request_id);
  if (requestId) problem.request_id = requestId;
  if (Array.isArray(obj.errors)) {
    const errors = obj.errors.flatMap((e): FieldError[] =>
      isRecord(e) && typeof e.field === 'string' && nonEmptyString(e.message)
        ? [{ field: e.field, message: e.message as string }]
        : [],
    );
    if (errors.length > 0) problem.errors = errors;
  }
  return problem;
}

/** Parses `Retry-After` (seconds or an HTTP date) into whole seconds from `now`. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  readonly retryAfter: number | undefined;

  constructor(problem: Problem, retryAfter?: number) {
    super(problem.detail ?? problem.title);
    this.name = 'ApiError';
    this.status = problem.status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  get fieldErrors(): FieldError[] {
    return this.problem.errors ?? [];
  }

  get requestId(): string | undefined {
    return this.problem.request_id;
  }
}

/** Reads an error response (problem+json, other JSON, or anything else) into an ApiError. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let body: unknown = undefined;
  const type = res.headers.get('content-type') ?? '';
  if (/[/+]json\b/i.test(type)) {
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
  }
  const problem = problemFromBody(body, res.status);
  if (!problem.request_id) {
    const header = res.headers.get('x-request-id');
    if (header) problem.request_id = header;
  }
  return new ApiError(problem, parseRetryAfter(res.headers.get('retry-after')));
}

/** A sentence to show a person for any error thrown by the API layer. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    let text = error.problem.detail ?? error.problem.title;
    if (error.status === 429 && error.retryAfter !== undefined) {
      text += ` Try again in ${error.retryAfter} second${error.retryAfter === 1 ? '' : 's'}.`;
    }
    return text;
  }
  return 'Something went wrong. Please try again.';
}

/**
 * Splits field errors into those a form shows beside its own inputs and the
 * rest (shown in the form's summary), keeping the first message per field.
 */
export function splitFieldErrors<F extends string>(
  errors: FieldError[],
  fields: readonly F[],
): { byField: Partial<Record<F, string>>; other: string[] } {
  const byField: Partial<Record<F, string>> = {};
  const other: string[] = [];
  for (const { field, message } of errors) {
    // Accept JSON-pointer style names too ("/password" or "body.password").
    const name = field.replace(/^\/+/, '').replace(/^body\./, '');
    if ((fields as readonly string[]).includes(name)) {
      const key = name as F;
      if (byField[key] === undefined) byField[key] = message;
    } else {
      other.push(field ? `${field}: ${message}` : message);
    }
  }
  return { byField, other };
}

/**
 * A fresh `Idempotency-Key` for a POST (a retry of the same submission reuses it). Not a secret:
 * where `crypto.randomUUID` is missing (an insecure context) a time-and-random key does.
 */
export function newIdempotencyKey(): string {
  if (typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

type UnauthorizedHandler = () => void;
let onUnauthorized: UnauthorizedHandler | null = null;

/** Registers what to do when an authenticated request is answered 401 (the session ended). */
export function setUnauthorizedHandler(handler: UnauthorizedHandler | null): void {
  onUnauthorized = handler;
}

type TokenRefresher = () => Promise<string | null>;
let refreshToken: TokenRefresher | null = null;

/**
 * Registers how to get a fresh access token when one is refused (the session's silent refresh).
 * An authenticated request answered 401 is retried once with the new token before the session
 * is given up.
 */
export function setTokenRefresher(refresher: TokenRefresher | null): void {
  refreshToken = refresher;
}

/** A fresh access token from the session's refresher (null when signed out). */
export function renewAccessToken(): Promise<string | null> {
  return refreshToken ? refreshToken().catch(() => null) : Promise.resolve(null);
}

export type RequestOptions = {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  token?: string | null;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Set false for calls whose 401 means nothing (e.g. logout). Default true. */
  notifyUnauthorized?: boolean;
};

/**
 * Sends one request to a same-origin path and returns the parsed JSON body
 * (undefined for 204). Throws ApiError for any non-2xx answer or network failure.
 */
export async function apiRequest<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const res = await send(path, options);
  return readJson<T>(res);
}

/** Like `apiRequest`, but hands back the raw 2xx response (for headers such as `ETag`). */
export async function apiResponse(path: string, options: RequestOptions = {}): Promise<Response> {
  return send(path, options);
}

function unreachable(): ApiError {
  return new ApiError({
    type: 'about:blank',
    title: fallbackTitle(0),
    status: 0,
    detail: 'Cannot reach the Trellis server. Check your connection and try again.',
  });
}

async function send(path: string, options: RequestOptions, retried = false): Promise<Response> {
  const { method = 'GET', body, token, signal, notifyUnauthorized = true } = options;
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  const isForm = typeof FormData !== 'undefined' && body instanceof FormData;
  if (body !== undefined && !isForm) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;

  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : isForm ? (body as FormData) : JSON.stringify(body),
      signal,
      credentials: 'same-origin',
    });
  } catch (cause) {
    if (signal?.aborted) throw cause;
    throw unreachable();
  }

  if (!res.ok) {
    if (res.status === 401 && token && !retried && refreshToken && notifyUnauthorized) {
      // The access token may just have expired: refresh once and try again.
      const fresh = await refreshToken().catch(() => null);
      if (fresh) return send(path, { ...options, token: fresh }, true);
    }
    const error = await errorFromResponse(res);
    if (res.status === 401 && token && notifyUnauthorized) onUnauthorized?.();
    throw error;
  }
  return res;
}

/** The parsed JSON body of a 2xx answer (undefined for 204 or an empty body). */
export async function readJson<T>(res: Response): Promise<T> {
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (text === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError({
      type: 'about:blank',
      title: 'Unexpected answer',
      status: res.status,
      detail: 'The server sent an answer this page cannot read.',
    });
  }
}
