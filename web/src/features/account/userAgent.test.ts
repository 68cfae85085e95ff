// Tests for the friendly device names of sessions.
import { describe, expect, it } from 'vitest';
import { summarizeUserAgent } from './userAgent';

const label = (ua: string | null | undefined) => summarizeUserAgent(ua).label;

describe('summarizeUserAgent', () => {
  it('names the common desktop browsers', () => {
    expect(label('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36')).toBe(
      'Chrome on Linux',
    );
    expect(label('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0')).toBe('Firefox on Windows');
    expect(
      label('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15'),
    ).toBe('Safari on macOS');
    expect(
      label(
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86',
      ),
    ).toBe('Edge on Windows');
    expect(
      label('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0'),
    ).toBe('Opera on Windows');
    expect(label('Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36')).toBe(
      'Chrome on ChromeOS',
    );
  });

  it('names phones and tablets', () => {
    expect(
      label(
        'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
      ),
    ).toBe('Safari on iPhone');
    expect(
      label('Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1'),
    ).toBe('Chrome on iPad');
    expect(
      label('Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36'),
    ).toBe('Chrome on Android');
    expect(
      label(
        'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36',
      ),
    ).toBe('Samsung Internet on Android');
    expect(label('Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0')).toBe('Firefox on Android');
    // An in-app web view on iOS still says iPhone and WebKit.
    expect(label('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148')).toBe(
      'Safari on iPhone',
    );
  });

  it('names headless Chrome and command-line clients', () => {
    expect(label('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36')).toBe(
      'Headless Chrome on Linux',
    );
    expect(label('curl/8.5.0')).toBe('curl');
    expect(label('python-requests/2.32.3')).toBe('python-requests');
    expect(label('Trellis-CLI/1.0 (Linux)')).toBe('Trellis-CLI on Linux');
  });

  it('copes with missing or odd values', () => {
    expect(label(null)).toBe('Unknown device');
    expect(label(undefined)).toBe('Unknown device');
    expect(label('   ')).toBe('Unknown device');
    expect(label('Mozilla/5.0 (X11; Linux x86_64)')).toBe('Browser on Linux');
    expect(label('Mozilla/5.0')).toBe('Unknown device');
    expect(summarizeUserAgent('curl/8.5.0')).toEqual({ browser: 'curl', os: null, label: 'curl' });
  });
});
