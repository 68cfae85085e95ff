// Links between the signed-out pages that keep where the person was going (`?next=`).

/** `path` with `?next=` carried over (so a detour via register still ends on that page). */
export function withNext(path: string, next: string | null): string {
  return next ? `${path}?next=${encodeURIComponent(next)}` : path;
}
