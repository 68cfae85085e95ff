// Short-lived highlights for cards and rows another person just changed (class `live-flash`).
import { useCallback, useEffect, useRef, useState } from 'react';

export const FLASH_MS = 2000;

/** The ids highlighted now, and `flash(id)` to highlight one for FLASH_MS (again, if it already is). */
export function useFlashes(durationMs = FLASH_MS): [ReadonlySet<string>, (id: string) => void] {
  const [ids, setIds] = useState<ReadonlySet<string>>(() => new Set());
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>());

  useEffect(() => {
    const all = timers.current;
    return () => {
      all.forEach((t) => clearTimeout(t));
      all.clear();
    };
  }, []);

  const flash = useCallback(
    (id: string) => {
      const old = timers.current.get(id);
      if (old) clearTimeout(old);
      setIds((s) => (s.has(id) ? s : new Set(s).add(id)));
      timers.current.set(
        id,
        setTimeout(() => {
          timers.current.delete(id);
          setIds((s) => {
            const next = new Set(s);
            next.delete(id);
            return next;
          });
        }, durationMs),
      );
    },
    [durationMs],
  );

  return [ids, flash];
}
