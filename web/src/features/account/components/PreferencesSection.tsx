// The "Preferences" card (GET/PUT /api/users/{id}/preferences): the theme applies and saves at
// once; language, time zone and email notifications are saved with "Save preferences".
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { Spinner } from '@/components/ui/Spinner';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { applyTheme, parseTheme, type Theme } from '@/lib/theme';
import { useRequiredSession } from '@/features/auth/session';
import { profileKey, savePreferences, usePreferences, type Notifications, type Preferences } from '../api';
import { browserTimeZone, localeOptions, timeZoneOptions } from '../options';
import { CheckboxField, SelectField } from './controls';
import { SettingsSection, StatusLine } from './SettingsLayout';

const THEME_OPTIONS: { value: Theme; label: string }[] = [
  { value: 'system', label: 'System' },
  { value: 'light', label: 'Light' },
  { value: 'dark', label: 'Dark' },
];

const NOTIFICATIONS: { key: keyof Notifications; label: string; description: string }[] = [
  { key: 'task_assigned', label: 'Task assigned to me', description: 'When someone assigns a task to you.' },
  { key: 'mentioned', label: 'Mentions', description: 'When someone mentions you in a task or comment.' },
  { key: 'comments', label: 'Comments', description: 'When someone comments on a task you follow.' },
  {
    key: 'security',
    label: 'Security alerts',
    description: 'New sign-ins and changes to your password or email. Always on, to keep your account safe.',
  },
];

const FIELDS = ['theme', 'locale', 'timezone'] as const;

export function PreferencesSection() {
  const prefs = usePreferences();
  return (
    <SettingsSection id="preferences-heading" title="Preferences" description="How Trellis looks for you, and which emails you get.">
      {prefs.isPending ? (
        <Spinner label="Loading your preferences…" />
      ) : prefs.isError ? (
        <div className="space-y-3">
          <ErrorSummary error={prefs.error} />
          <Button variant="secondary" onClick={() => void prefs.refetch()}>
            Try again
          </Button>
        </div>
      ) : (
        <PreferencesForm saved={prefs.data} />
      )}
    </SettingsSection>
  );
}

function PreferencesForm({ saved }: { saved: Preferences }) {
  const session = useRequiredSession();
  const queryClient = useQueryClient();
  const queryKey = keys.preferences(session.user.id);
  const [locale, setLocale] = useState(saved.locale);
  const [timezone, setTimezone] = useState(saved.timezone);
  const [notifications, setNotifications] = useState<Preferences['notifications']>({ ...saved.notifications, security: true });
  const [status, setStatus] = useState('');
  const suggestedZone = browserTimeZone();

  // Saving preferences gives the user a new version (ETag): fetch it, or the next profile
  // change would be refused as stale (412).
  function refreshProfileVersion() {
    void queryClient.invalidateQueries({ queryKey: profileKey });
  }

  // The theme: applied and stored at once; on failure the previous one comes back.
  const themeMutation = useMutation({
    mutationFn: (next: Preferences) => savePreferences(session.accessToken, session.user.id, next),
    onMutate: (next) => {
      const previous = queryClient.getQueryData<Preferences>(queryKey);
      queryClient.setQueryData(queryKey, next);
      applyTheme(next.theme);
      return { previous };
    },
    onSuccess: (stored) => {
      queryClient.setQueryData(queryKey, stored);
      refreshProfileVersion();
    },
    onError: (_error, _next, context) => {
      if (context?.previous) {
        queryClient.setQueryData(queryKey, context.previous);
        applyTheme(context.previous.theme);
      }
    },
  });

  const mutation = useMutation({
    mutationFn: (next: Preferences) => savePreferences(session.accessToken, session.user.id, next),
    onSuccess: (stored) => {
      queryClient.setQueryData(queryKey, stored);
      refreshProfileVersion();
      setStatus('Preferences saved.');
    },
  });

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const serverErrors = apiError ? splitFieldErrors(apiError.fieldErrors, FIELDS) : { byField: {}, other: [] };

  function changeTheme(value: string) {
    const current = queryClient.getQueryData<Preferences>(queryKey) ?? saved;
    themeMutation.mutate({ ...current, theme: parseTheme(value) });
  }

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setStatus('');
    const current = queryClient.getQueryData<Preferences>(queryKey) ?? saved;
    mutation.mutate({ ...current, locale, timezone, notifications: { ...notifications, security: true } });
  }

  return (
    <div className="space-y-6">
      <div className="max-w-xs space-y-2">
        <SelectField
          label="Theme"
          name="theme"
          value={saved.theme}
          onChange={(e) => changeTheme(e.target.value)}
          hint="Applies at once. “System” follows your device’s light or dark setting."
        >
          {THEME_OPTIONS.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </SelectField>
        <ErrorSummary error={themeMutation.error} />
      </div>

      <form onSubmit={handleSubmit} noValidate className="space-y-5 border-t border-zinc-200 pt-6">
        <ErrorSummary error={mutation.error} otherErrors={serverErrors.other} />
        <div className="grid gap-5 sm:grid-cols-2">
          <SelectField
            label="Language"
            name="locale"
            value={locale}
            onChange={(e) => setLocale(e.target.value)}
            error={serverErrors.byField.locale}
            hint="For dates and numbers."
          >
            {localeOptions(saved.locale).map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </SelectField>
          <div className="space-y-1.5">
            <SelectField
              label="Time zone"
              name="timezone"
              value={timezone}
              onChange={(e) => setTimezone(e.target.value)}
              error={serverErrors.byField.timezone}
              hint={
                suggestedZone && suggestedZone !== timezone ? (
                  <>
                    This device is set to {suggestedZone.replace(/_/g, ' ')}.{' '}
                    <button
                      type="button"
                      onClick={() => setTimezone(suggestedZone)}
                      className="rounded font-medium text-indigo-700 hover:text-indigo-900"
                    >
                      Use it
                    </button>
                  </>
                ) : undefined
              }
            >
              {timeZoneOptions(timezone).map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </SelectField>
          </div>
        </div>
        <fieldset className="space-y-3">
          <legend className="mb-3 text-sm font-medium text-zinc-800">Email notifications</legend>
          {NOTIFICATIONS.map((n) => (
            <CheckboxField
              key={n.key}
              label={n.label}
              description={n.description}
              name={`notifications.${n.key}`}
              checked={n.key === 'security' ? true : notifications[n.key] !== false}
              disabled={n.key === 'security'}
              onChange={(e) => setNotifications((current) => ({ ...current, [n.key]: e.target.checked }))}
            />
          ))}
        </fieldset>
        <div className="flex flex-wrap items-center gap-3">
          <Button type="submit" busy={mutation.isPending}>
            {mutation.isPending ? 'Saving…' : 'Save preferences'}
          </Button>
          <StatusLine>{status}</StatusLine>
        </div>
      </form>
    </div>
  );
}
