// The rendered width of an element, kept up to date with a ResizeObserver (charts redraw to fit).
import { useCallback, useEffect, useRef, useState } from 'react';

export function useElementWidth<T extends HTMLElement>(fallback = 600): [(node: T | null) => void, number] {
  const [width, setWidth] = useState(fallback);
  const observer = useRef<ResizeObserver | null>(null);

  const ref = useCallback((node: T | null) => {
    observer.current?.disconnect();
    observer.current = null;
    if (!node) return;
    const measure = (w: number) => {
      if (w > 0) setWidth(Math.round(w));
    };
    measure(node.getBoundingClientRect().width);
    if (typeof ResizeObserver !== 'undefined') {
      observer.current = new ResizeObserver((entries) => {
        const entry = entries[0];
        if (entry) measure(entry.contentRect.width);
      });
      observer.current.observe(node);
    }
  }, []);

  useEffect(() => () => observer.current?.disconnect(), []);
  return [ref, width];
}
