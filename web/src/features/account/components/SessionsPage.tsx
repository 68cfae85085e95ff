// Sessions (/settings/sessions): where the account is signed in (device, IP, when), signing one
// other session out, or every session including this one ("Sign out everywhere").
import { useState } from 'react';
import { flushSync } from 'react-dom';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { EmptyState } from '@/components/ui/EmptyState';
import { Spinner } from '@/components/ui/Spinner';
import { ErrorSummary } from '@/components/ErrorSummary';
import { keys } from '@/lib/queryKeys';
import { navigate } from '@/app/router';
import { usePage } from '@/app/usePage';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { logoutAll, revokeSession, usePreferences, useSessions, type SessionInfo } from '../api';
import { formatDateTime, formatRelative } from '../format';
import { sortSessions } from '../sessions';
import { summarizeUserAgent } from '../userAgent';
import { SettingsLayout, SettingsSection, StatusLine } from './SettingsLayout';

export function SessionsPage() {
  const headingRef = usePage('Sessions');
  const sessions = useSessions();
  const [status, setStatus] = useState('');

  return (
    <SettingsLayout
      title="Sessions"
      intro="Where your account is signed in. Sign out any session you do not recognise, then change your password."
      headingRef={headingRef}
    >
      <section aria-label="Signed-in sessions" className="space-y-3">
        <StatusLine>{status}</StatusLine>
        {sessions.isPending ? (
          <Spinner label="Loading sessions…" />
        ) : sessions.isError ? (
          <div className="space-y-3">
            <ErrorSummary error={sessions.error} />
            <Button variant="secondary" onClick={() => void sessions.refetch()}>
              Try again
            </Button>
          </div>
        ) : sessions.data.length === 0 ? (
          <EmptyState title="No sessions">Nothing is signed in, not even this page: try reloading it.</EmptyState>
        ) : (
          <ul aria-label="Sessions" className="divide-y divide-zinc-200 overflow-hidden rounded-xl border border-zinc-200 bg-white shadow-sm">
            {sortSessions(sessions.data).map((s) => (
              <SessionRow key={s.id} info={s} onSignedOut={(label) => setStatus(`Signed out ${label}.`)} />
            ))}
          </ul>
        )}
      </section>
      <SignOutEverywhere />
    </SettingsLayout>
  );
}

function SessionRow({ info, onSignedOut }: { info: SessionInfo; onSignedOut: (label: string) => void }) {
  const session = useRequiredSession();
  const queryClient = useQueryClient();
  const prefs = usePreferences();
  const locale = prefs.data?.locale;
  const timeZone = prefs.data?.timezone;
  const device = summarizeUserAgent(info.user_agent);
  const lastUsed = formatRelative(info.last_used_at, Date.now(), locale);
  const mutation = useMutation({
    mutationFn: () => revokeSession(session.accessToken, info.id),
    onSuccess: () => {
      onSignedOut(device.label);
      void queryClient.invalidateQueries({ queryKey: keys.sessions });
    },
  });

  return (
    <li className="flex flex-col gap-3 px-4 py-4 sm:flex-row sm:items-center sm:justify-between sm:px-5">
      <div className="min-w-0 space-y-1">
        <p className="flex flex-wrap items-center gap-2 text-sm font-medium text-zinc-900">
          <DeviceIcon os={device.os} />
          <span>{device.label}</span>
          {info.current && (
            <span className="inline-flex items-center rounded-full bg-emerald-50 px-2 py-0.5 text-xs font-medium text-emerald-800 ring-1 ring-inset ring-emerald-200">
              This device
            </span>
          )}
        </p>
        <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-0.5 text-sm text-zinc-600">
          <dt>IP address</dt>
          <dd className="break-all font-mono text-xs leading-5">{info.ip ?? 'Unknown'}</dd>
          <dt>Signed in</dt>
          <dd>
            <time dateTime={info.created_at}>{formatDateTime(info.created_at, locale, timeZone)}</time>
          </dd>
          <dt>Last used</dt>
          <dd>
            <time dateTime={info.last_used_at} title={formatDateTime(info.last_used_at, locale, timeZone)}>
              {info.current ? 'Now' : lastUsed}
            </time>
          </dd>
        </dl>
        {mutation.error != null && <ErrorSummary error={mutation.error} />}
      </div>
      {!info.current && (
        <Button
          variant="secondary"
          busy={mutation.isPending}
          onClick={() => mutation.mutate()}
          aria-label={`Sign out ${device.label}, last used ${lastUsed}`}
          className="shrink-0 self-start sm:self-center"
        >
          Sign out
        </Button>
      )}
    </li>
  );
}

function DeviceIcon({ os }: { os: string | null }) {
  const phone = os === 'iPhone' || os === 'Android';
  return (
    <svg aria-hidden="true" viewBox="0 0 20 20" className="size-4 shrink-0 fill-none stroke-zinc-500" strokeWidth="1.5">
      {phone ? (
        <>
          <rect x="6" y="2.5" width="8" height="15" rx="1.5" />
          <path d="M9 15h2" strokeLinecap="round" />
        </>
      ) : (
        <>
          <rect x="2.5" y="4" width="15" height="10" rx="1.5" />
          <path d="M7 17h6M10 14v3" strokeLinecap="round" />
        </>
      )}
    </svg>
  );
}

function SignOutEverywhere() {
  const session = useRequiredSession();
  const { signOut, setNotice } = useSession();
  const mutation = useMutation({
    mutationFn: () => logoutAll(session.accessToken),
    onSuccess: () => {
      // The server has ended this session too: forget it here without another request, and
      // render sign-in at once (one render, so no guard sees the old address signed out).
      flushSync(() => {
        signOut({ serverEnded: true });
        setNotice('You have been signed out on every device.');
        navigate('/login');
      });
    },
  });
  return (
    <SettingsSection
      id="everywhere-heading"
      title="Sign out everywhere"
      description="Ends every session of your account, this one included: every device will need to sign in again."
    >
      <div className="space-y-3">
        <ErrorSummary error={mutation.error} />
        <Button variant="danger" busy={mutation.isPending} onClick={() => mutation.mutate()}>
          Sign out everywhere
        </Button>
      </div>
    </SettingsSection>
  );
}
