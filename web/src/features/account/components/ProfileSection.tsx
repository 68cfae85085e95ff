// The "Profile" card: name and email (PATCH /api/users/{id} with If-Match), whether the email is
// verified, and "Resend verification email" when it is not. A new email needs the current
// password (step-up) and applies only once the link mailed to it is opened (202 meanwhile).
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { Spinner } from '@/components/ui/Spinner';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { PasswordField } from '@/features/auth/components/PasswordField';
import { profileKey, resendVerification, updateProfile, type ProfileChange, type VersionedUser } from '../api';
import { profileChanges, validateProfile, type ProfileErrors } from '../profile';
import { useSyncedMe } from '../useSyncedMe';
import { SettingsSection, StatusLine } from './SettingsLayout';

const FIELDS = ['name', 'email'] as const;

export function ProfileSection() {
  const me = useSyncedMe();
  return (
    <SettingsSection id="profile-heading" title="Profile" description="How other people in your projects see you, and where we write to you.">
      {me.isPending ? (
        <Spinner label="Loading your profile…" />
      ) : me.isError ? (
        <div className="space-y-3">
          <ErrorSummary error={me.error} />
          <Button variant="secondary" onClick={() => void me.refetch()}>
            Try again
          </Button>
        </div>
      ) : (
        <ProfileForm me={me.data} />
      )}
    </SettingsSection>
  );
}

function ProfileForm({ me }: { me: VersionedUser }) {
  const session = useRequiredSession();
  const { updateUser } = useSession();
  const queryClient = useQueryClient();
  const [name, setName] = useState(me.user.name);
  const [email, setEmail] = useState(me.user.email);
  const [localErrors, setLocalErrors] = useState<ProfileErrors>({});
  const [currentPassword, setCurrentPassword] = useState('');
  const [passwordError, setPasswordError] = useState<string | null>(null);
  const [saved, setSaved] = useState('');
  const emailChanging = email.trim().toLowerCase() !== me.user.email.toLowerCase();

  const mutation = useMutation({
    mutationFn: (change: ProfileChange) => updateProfile(session.accessToken, session.user.id, change, me.etag),
    onSuccess: (result, change) => {
      queryClient.setQueryData(profileKey, result);
      updateUser(result.user);
      setName(result.user.name);
      setEmail(result.user.email);
      setCurrentPassword('');
      setSaved(
        change.email !== undefined && change.email.toLowerCase() !== result.user.email.toLowerCase()
          ? `We sent a link to ${change.email}. Your email changes once you open it; until then it stays ${result.user.email}.`
          : 'Saved.',
      );
    },
    onError: (error) => {
      // Changed elsewhere since this page loaded: fetch the current version.
      if (error instanceof ApiError && error.status === 412) void queryClient.invalidateQueries({ queryKey: profileKey });
    },
  });

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const proofRefused = apiError?.status === 401;
  const serverErrors = apiError ? splitFieldErrors(apiError.fieldErrors, FIELDS) : { byField: {}, other: [] };
  const errors: ProfileErrors = { ...serverErrors.byField, ...localErrors };

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setSaved('');
    const problems = validateProfile(name, email);
    setLocalErrors(problems);
    if (Object.keys(problems).length > 0) return;
    const change = profileChanges(me.user, name, email);
    if (Object.keys(change).length === 0) {
      mutation.reset();
      setSaved('Nothing to save: your profile is unchanged.');
      return;
    }
    if (change.email !== undefined) {
      if (currentPassword === '') {
        setPasswordError('Enter your current password to change your email.');
        return;
      }
      change.current_password = currentPassword;
    }
    setPasswordError(null);
    mutation.mutate(change);
  }

  return (
    <form onSubmit={handleSubmit} noValidate className="space-y-5">
      {apiError?.status === 412 ? (
        <div role="alert" className="rounded-md border border-amber-200 bg-amber-50 px-3 py-2.5 text-sm text-amber-800">
          Your profile was changed somewhere else since this page opened. Save again to keep what you typed here.
        </div>
      ) : (
        <ErrorSummary error={proofRefused ? null : mutation.error} otherErrors={serverErrors.other} />
      )}
      <div className="grid gap-5 sm:grid-cols-2">
        <TextField
          label="Name"
          name="name"
          autoComplete="name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={errors.name}
          required
        />
        <TextField
          label="Email"
          type="email"
          name="email"
          autoComplete="email"
          inputMode="email"
          autoCapitalize="none"
          spellCheck={false}
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={errors.email}
          hint={email.trim().toLowerCase() !== me.user.email.toLowerCase() ? 'We will send a confirmation link to the new address.' : undefined}
          required
        />
      </div>
      {emailChanging && (
        <div className="max-w-sm">
          <PasswordField
            label="Current password"
            name="current-password"
            autoComplete="current-password"
            value={currentPassword}
            onChange={setCurrentPassword}
            error={passwordError ?? (proofRefused ? 'That is not your password.' : null)}
          />
        </div>
      )}
      <EmailVerification verified={me.user.email_verified === true} email={me.user.email} />
      <div className="flex flex-wrap items-center gap-3">
        <Button type="submit" busy={mutation.isPending}>
          {mutation.isPending ? 'Saving…' : 'Save profile'}
        </Button>
        <StatusLine>{saved}</StatusLine>
      </div>
    </form>
  );
}

function EmailVerification({ verified, email }: { verified: boolean; email: string }) {
  const session = useRequiredSession();
  const [sent, setSent] = useState(false);
  const mutation = useMutation({
    mutationFn: () => resendVerification(session.accessToken),
    onSuccess: () => setSent(true),
  });

  if (verified) {
    return (
      <p className="flex items-center gap-2 text-sm text-zinc-700">
        <span className="inline-flex items-center rounded-full bg-emerald-50 px-2 py-0.5 text-xs font-medium text-emerald-800 ring-1 ring-inset ring-emerald-200">
          Verified
        </span>
        Your email address is confirmed.
      </p>
    );
  }
  return (
    <div className="space-y-3 rounded-md border border-amber-200 bg-amber-50 px-3 py-3 text-sm text-amber-800">
      <p>
        <span className="font-medium">Not verified yet.</span> Open the link we sent to {email} to confirm it is yours.
      </p>
      <ErrorSummary error={mutation.error} />
      <div className="flex flex-wrap items-center gap-3">
        <Button variant="secondary" busy={mutation.isPending} onClick={() => mutation.mutate()}>
          Resend verification email
        </Button>
        <p role="status" className="text-amber-800">
          {sent ? 'Sent. The link works for 24 hours; check your spam folder too.' : ''}
        </p>
      </div>
    </div>
  );
}
