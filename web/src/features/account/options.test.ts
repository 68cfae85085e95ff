// Tests for the language and time-zone choices.
import { describe, expect, it } from 'vitest';
import { FALLBACK_TIME_ZONES, localeLabel, localeOptions, OFFERED_LOCALES, timeZoneOptions } from './options';

describe('localeOptions', () => {
  it('offers the usual languages, English first', () => {
    const values = localeOptions('en').map((o) => o.value);
    expect(values[0]).toBe('en');
    expect(values).toEqual([...OFFERED_LOCALES]);
    for (const tag of ['en-GB', 'de', 'fr', 'es', 'ja']) expect(values).toContain(tag);
  });

  it('keeps a current value that is not offered', () => {
    const values = localeOptions('fi').map((o) => o.value);
    expect(values.at(-1)).toBe('fi');
    expect(values.filter((v) => v === 'de')).toHaveLength(1);
    expect(localeOptions('de').filter((o) => o.value === 'de')).toHaveLength(1);
  });

  it('labels languages in their own words and in English', () => {
    expect(localeLabel('en')).toBe('English');
    expect(localeLabel('de')).toBe('Deutsch (German)');
    expect(localeLabel('en-GB')).toMatch(/English/);
    expect(localeLabel('!!')).toBe('!!');
  });
});

describe('timeZoneOptions', () => {
  it('puts UTC first, once, then the zones in order', () => {
    const values = timeZoneOptions('UTC', ['Europe/Paris', 'UTC', 'America/New_York', 'Etc/UTC']).map((o) => o.value);
    expect(values).toEqual(['UTC', 'America/New_York', 'Europe/Paris']);
  });

  it('keeps the current zone even when the list lacks it', () => {
    const values = timeZoneOptions('Asia/Calcutta', ['Asia/Kolkata']).map((o) => o.value);
    expect(values).toContain('Asia/Calcutta');
    expect(values).toContain('Asia/Kolkata');
  });

  it('shows spaces instead of underscores', () => {
    expect(timeZoneOptions('UTC', ['America/New_York']).find((o) => o.value === 'America/New_York')?.label).toBe('America/New York');
  });

  it('has a fallback list with UTC', () => {
    expect(FALLBACK_TIME_ZONES).toContain('UTC');
    expect(timeZoneOptions('UTC').length).toBeGreaterThan(10);
  });
});
