// Per-page housekeeping: sets the document title and, after in-app navigation,
// moves focus to the page heading so screen-reader users hear the new page.
import { useEffect, useRef } from 'react';
import { hasNavigated } from './router';

export function usePage(title: string) {
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Trellis`;
  }, [title]);
  useEffect(() => {
    if (hasNavigated()) headingRef.current?.focus();
  }, []);
  return headingRef;
}
