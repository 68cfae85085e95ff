// A short, friendly name for a session's device from its User-Agent header: "Chrome on
// Linux", "Safari on iPhone", "Firefox on Windows", "curl". Good enough to recognise one's own
// devices; not a full user-agent database.

export type DeviceSummary = { browser: string | null; os: string | null; label: string };

/** Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari". */
const BROWSERS: [RegExp, string][] = [
  [/\bEdg(?:e|A|iOS)?\/\d/, 'Edge'],
  [/\bOPR\/\d|\bOpera\b/, 'Opera'],
  [/\bSamsungBrowser\/\d/, 'Samsung Internet'],
  [/\bVivaldi\/\d/, 'Vivaldi'],
  [/\bYaBrowser\/\d/, 'Yandex Browser'],
  [/\bFirefox\/\d|\bFxiOS\/\d/, 'Firefox'],
  [/\bHeadlessChrome\/\d/, 'Headless Chrome'],
  [/\bChromium\/\d/, 'Chromium'],
  [/\bChrome\/\d|\bCriOS\/\d/, 'Chrome'],
  [/\bVersion\/[\d.]+.*\bSafari\/\d|\b(?:iPhone|iPad).*AppleWebKit(?!.*\b(?:CriOS|FxiOS|EdgiOS)\b)/, 'Safari'],
  [/\bMSIE \d|\bTrident\/\d/, 'Internet Explorer'],
];

const SYSTEMS: [RegExp, string][] = [
  [/\biPhone\b/, 'iPhone'],
  [/\biPad\b/, 'iPad'],
  [/\bAndroid\b/, 'Android'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bUbuntu\b/, 'Ubuntu'],
  [/\bFedora\b/, 'Fedora'],
  [/\bLinux\b|\bX11\b/, 'Linux'],
  [/\bFreeBSD\b/, 'FreeBSD'],
];

function first(ua: string, table: [RegExp, string][]): string | null {
  for (const [pattern, name] of table) if (pattern.test(ua)) return name;
  return null;
}

/** The first product token of a non-browser client ("curl/8.5.0" → "curl"), if it has one. */
function client(ua: string): string | null {
  const match = /^([A-Za-z][\w.-]*)(?:\/[\w.-]+)?/.exec(ua);
  if (!match || match[1] === 'Mozilla') return null;
  return match[1] ?? null;
}

export function summarizeUserAgent(userAgent: string | null | undefined): DeviceSummary {
  const ua = (userAgent ?? '').trim();
  if (ua === '') return { browser: null, os: null, label: 'Unknown device' };
  const browser = first(ua, BROWSERS);
  const os = first(ua, SYSTEMS);
  if (browser && os) return { browser, os, label: `${browser} on ${os}` };
  if (browser) return { browser, os, label: browser };
  const other = client(ua);
  if (other) return { browser: other, os, label: os ? `${other} on ${os}` : other };
  if (os) return { browser: null, os, label: `Browser on ${os}` };
  return { browser: null, os: null, label: 'Unknown device' };
}
