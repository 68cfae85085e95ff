// The choices of the preference selects: languages (locale) and IANA time zones, each with the
// person's current value kept even when it is not among the offered ones.

/** Languages the app offers (BCP 47, canonical case as the API wants it). */
export const OFFERED_LOCALES = ['en', 'en-US', 'en-GB', 'de', 'fr', 'es', 'it', 'nl', 'pt-BR', 'pl', 'sv', 'ja', 'ko', 'zh-Hans'] as const;

export type Option = { value: string; label: string };

/** A language's name in that language and in English ("Deutsch (German)"), or the tag itself. */
export function localeLabel(tag: string): string {
  try {
    const own = new Intl.DisplayNames([tag], { type: 'language' }).of(tag);
    const english = new Intl.DisplayNames(['en'], { type: 'language' }).of(tag);
    if (!own || !english) return tag;
    const capitalised = own.charAt(0).toLocaleUpperCase(tag) + own.slice(1);
    return capitalised === english ? english : `${capitalised} (${english})`;
  } catch {
    return tag;
  }
}

export function localeOptions(current: string): Option[] {
  const tags: string[] = [...OFFERED_LOCALES];
  if (current && !tags.includes(current)) tags.push(current);
  return tags.map((value) => ({ value, label: localeLabel(value) }));
}

/** A small list for browsers without `Intl.supportedValuesOf`. */
export const FALLBACK_TIME_ZONES = [
  'UTC',
  'America/Los_Angeles',
  'America/Denver',
  'America/Chicago',
  'America/New_York',
  'America/Sao_Paulo',
  'Europe/London',
  'Europe/Paris',
  'Europe/Berlin',
  'Europe/Kyiv',
  'Africa/Lagos',
  'Africa/Johannesburg',
  'Asia/Dubai',
  'Asia/Kolkata',
  'Asia/Singapore',
  'Asia/Shanghai',
  'Asia/Tokyo',
  'Australia/Sydney',
  'Pacific/Auckland',
];

/** What the browser knows (`Intl.supportedValuesOf('timeZone')`), else the fallback list. */
export function supportedTimeZones(): string[] {
  const intl = Intl as typeof Intl & { supportedValuesOf?: (key: string) => string[] };
  try {
    if (typeof intl.supportedValuesOf === 'function') return intl.supportedValuesOf('timeZone');
  } catch {
    // Fall through.
  }
  return FALLBACK_TIME_ZONES;
}

/** Sorted time zones with UTC first and the current value always present. */
export function timeZoneOptions(current: string, available: readonly string[] = supportedTimeZones()): Option[] {
  const zones = new Set(available.filter((z) => z !== 'UTC' && z !== 'Etc/UTC'));
  if (current && current !== 'UTC') zones.add(current);
  const sorted = [...zones].sort((a, b) => a.localeCompare(b));
  return ['UTC', ...sorted].map((value) => ({ value, label: value.replace(/_/g, ' ') }));
}

/** The browser's own time zone (a good suggestion), or null. */
export function browserTimeZone(): string | null {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
  } catch {
    return null;
  }
}
