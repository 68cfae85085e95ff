// The colour theme: light, dark, or the system's, applied at once as the `dark` class on <html>.
export type Theme = 'light' | 'dark' | 'system';

export const THEMES: readonly Theme[] = ['system', 'light', 'dark'];

/** Whether a theme choice renders dark, given whether the system prefers dark. */
export function isDark(theme: Theme, systemPrefersDark: boolean): boolean {
  return theme === 'dark' || (theme === 'system' && systemPrefersDark);
}

export function parseTheme(value: unknown): Theme {
  return value === 'light' || value === 'dark' ? value : 'system';
}

let current: Theme = 'system';
let media: MediaQueryList | null = null;

function render(): void {
  const dark = isDark(current, media?.matches ?? false);
  document.documentElement.classList.toggle('dark', dark);
  document.documentElement.style.colorScheme = dark ? 'dark' : 'light';
}

/** Applies a theme now, and follows the system's changes while it is `system`. */
export function applyTheme(theme: Theme): void {
  current = theme;
  if (typeof window === 'undefined') return;
  if (!media && typeof window.matchMedia === 'function') {
    media = window.matchMedia('(prefers-color-scheme: dark)');
    media.addEventListener('change', render);
  }
  render();
}

export function currentTheme(): Theme {
  return current;
}
