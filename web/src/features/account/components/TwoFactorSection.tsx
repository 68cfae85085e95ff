// "Two-factor authentication": set up TOTP (password → QR code + secret → a code from the app →
// on), show the ten recovery codes once (copy, download), get new ones, and turn it off again.
// Every change needs the current password in that very request (step-up, issue 16).
import { useEffect, useRef, useState, type FormEvent, type RefObject } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { renderSVG } from 'uqr';
import { Button } from '@/components/ui/Button';
import { Dialog } from '@/components/ui/Dialog';
import { TextField } from '@/components/ui/Field';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { normalizeMfaCode } from '@/features/auth/mfaCode';
import { disableTotp, enableTotp, regenerateRecoveryCodes, setupTotp, type TotpSetup } from '../api';
import { downloadBlob } from '../download';
import { RECOVERY_CODES_FILENAME, recoveryCodesClipboardText, recoveryCodesFileText } from '../recoveryCodes';
import { PasswordConfirmForm } from './PasswordConfirmForm';
import { SettingsSection, StatusLine } from './SettingsLayout';

type Step = { kind: 'idle' } | { kind: 'setup'; setup: TotpSetup } | { kind: 'codes'; codes: string[]; renewed: boolean };

type Prompt = 'setup' | 'disable' | 'renew' | null;

const STEP_HEADING = 'text-sm font-semibold text-zinc-900 focus:outline-none';

export function TwoFactorSection() {
  const session = useRequiredSession();
  const { updateUser } = useSession();
  const queryClient = useQueryClient();
  const [step, setStep] = useState<Step>({ kind: 'idle' });
  const [status, setStatus] = useState('');
  const [prompt, setPrompt] = useState<Prompt>(null);
  const focusRef = useRef<HTMLElement>(null);
  const on = session.user.mfa_enabled === true;

  // Each new step takes the focus (its heading, or the status after "Done"); not on page load.
  const shownStep = useRef(step.kind);
  useEffect(() => {
    if (shownStep.current === step.kind) return;
    shownStep.current = step.kind;
    focusRef.current?.focus();
  }, [step.kind]);

  function setMfaEnabled(enabled: boolean) {
    updateUser({ ...session.user, mfa_enabled: enabled });
    void queryClient.invalidateQueries({ queryKey: keys.me });
  }

  async function startSetup(password: string) {
    try {
      const setup = await setupTotp(session.accessToken, password);
      setPrompt(null);
      setStep({ kind: 'setup', setup });
    } catch (error) {
      // Already on (turned on in another tab): show that.
      if (error instanceof ApiError && error.status === 409) {
        setPrompt(null);
        setMfaEnabled(true);
      }
      throw error;
    }
  }

  async function renewCodes(password: string) {
    const codes = await regenerateRecoveryCodes(session.accessToken, password);
    setPrompt(null);
    setStep({ kind: 'codes', codes, renewed: true });
  }

  if (step.kind === 'setup') {
    return (
      <SettingsSection id="mfa-heading" title="Two-factor authentication">
        <SetupStep
          setup={step.setup}
          headingRef={focusRef}
          onEnabled={(codes) => {
            setMfaEnabled(true);
            setStep({ kind: 'codes', codes, renewed: false });
          }}
          onCancel={() => setStep({ kind: 'idle' })}
        />
      </SettingsSection>
    );
  }

  if (step.kind === 'codes') {
    return (
      <SettingsSection id="mfa-heading" title="Two-factor authentication">
        <RecoveryCodesStep
          codes={step.codes}
          renewed={step.renewed}
          email={session.user.email}
          headingRef={focusRef}
          onDone={() => {
            setStatus('');
            setStep({ kind: 'idle' });
          }}
        />
      </SettingsSection>
    );
  }

  return (
    <SettingsSection
      id="mfa-heading"
      title="Two-factor authentication"
      description="A second step when you sign in: a 6-digit code from an authenticator app on your phone, so a stolen password alone is not enough."
    >
      {on ? (
        <div className="space-y-4">
          <p ref={focusRef as RefObject<HTMLParagraphElement>} tabIndex={-1} className="flex items-center gap-2 text-sm text-zinc-800 focus:outline-none">
            <span className="inline-flex items-center rounded-full bg-emerald-50 px-2 py-0.5 text-xs font-medium text-emerald-800 ring-1 ring-inset ring-emerald-200">
              On
            </span>
            Two-factor authentication is on.
          </p>
          <div className="flex flex-wrap items-center gap-3">
            <Button variant="secondary" onClick={() => setPrompt('renew')}>
              Get new recovery codes
            </Button>
            <Button variant="secondary" onClick={() => setPrompt('disable')}>
              Turn off two-factor authentication
            </Button>
          </div>
          <StatusLine>{status}</StatusLine>
        </div>
      ) : (
        <div className="space-y-4">
          <p className="text-sm text-zinc-700">Two-factor authentication is off.</p>
          <div className="flex flex-wrap items-center gap-3">
            <Button onClick={() => setPrompt('setup')}>Set up two-factor authentication</Button>
            <StatusLine>{status}</StatusLine>
          </div>
        </div>
      )}
      <Dialog open={prompt === 'disable'} onClose={() => setPrompt(null)} title="Turn off two-factor authentication?">
        {prompt === 'disable' && (
          <DisableForm
            onCancel={() => setPrompt(null)}
            onDisabled={() => {
              setPrompt(null);
              setMfaEnabled(false);
              setStatus('Two-factor authentication is off. Your recovery codes no longer work.');
            }}
          />
        )}
      </Dialog>
      <Dialog open={prompt === 'setup'} onClose={() => setPrompt(null)} title="Set up two-factor authentication">
        {prompt === 'setup' && (
          <PasswordConfirmForm
            refusedDetail="Wrong password: nothing was set up."
            confirmLabel="Continue"
            confirmVariant="primary"
            action={startSetup}
            onDone={() => undefined}
            onCancel={() => setPrompt(null)}
          >
            Enter your password to start. A signed-in session alone cannot change how you sign in.
          </PasswordConfirmForm>
        )}
      </Dialog>
      <Dialog open={prompt === 'renew'} onClose={() => setPrompt(null)} title="Get new recovery codes?">
        {prompt === 'renew' && (
          <PasswordConfirmForm
            refusedDetail="Wrong password: your recovery codes are unchanged."
            confirmLabel="Get new codes"
            confirmVariant="primary"
            action={renewCodes}
            onDone={() => undefined}
            onCancel={() => setPrompt(null)}
          >
            Ten new codes replace the ones you have: the earlier codes stop working at once. Enter your password to confirm.
          </PasswordConfirmForm>
        )}
      </Dialog>
    </SettingsSection>
  );
}

function qrDataUrl(uri: string): string {
  const svg = renderSVG(uri, { border: 2, whiteColor: '#ffffff', blackColor: '#000000' });
  return `data:image/svg+xml;utf8,${encodeURIComponent(svg)}`;
}

function SetupStep({
  setup,
  headingRef,
  onEnabled,
  onCancel,
}: {
  setup: TotpSetup;
  headingRef: RefObject<HTMLElement | null>;
  onEnabled: (codes: string[]) => void;
  onCancel: () => void;
}) {
  const session = useRequiredSession();
  const codeRef = useRef<HTMLInputElement>(null);
  const [code, setCode] = useState('');
  const [localError, setLocalError] = useState<string | null>(null);
  const mutation = useMutation({
    mutationFn: (value: string) => enableTotp(session.accessToken, value),
    onSuccess: onEnabled,
    onError: () => setTimeout(() => codeRef.current?.focus(), 0),
  });
  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const fieldError =
    localError ??
    (apiError?.status === 422
      ? 'That code is not the current one. Check the time on your phone, then enter the newest code.'
      : null);

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const value = normalizeMfaCode(code);
    if (!/^\d{6}$/.test(value)) {
      setLocalError('Enter the 6-digit code your authenticator app shows.');
      codeRef.current?.focus();
      return;
    }
    setLocalError(null);
    mutation.mutate(value);
  }

  return (
    <div className="space-y-5">
      <h3 ref={headingRef as RefObject<HTMLHeadingElement>} tabIndex={-1} className={STEP_HEADING}>
        1. Scan this QR code with your authenticator app
      </h3>
      <div className="flex flex-col gap-5 sm:flex-row sm:items-start">
        <img
          alt="QR code for your authenticator app"
          src={qrDataUrl(setup.otpauth_uri)}
          width={176}
          height={176}
          className="size-44 shrink-0 rounded-md bg-white ring-1 ring-zinc-200"
        />
        <div className="min-w-0 space-y-2 text-sm text-zinc-700">
          <p>Use any authenticator app, such as 1Password, Google Authenticator, Microsoft Authenticator or Aegis.</p>
          <p>Cannot scan? Enter this key in the app instead (time-based, 6 digits):</p>
          <code
            data-testid="totp-secret"
            className="block break-all rounded-md bg-zinc-50 px-3 py-2 font-mono ring-1 ring-inset ring-zinc-200 text-sm tracking-wider text-zinc-900 select-all"
          >
            {setup.secret}
          </code>
        </div>
      </div>
      <form onSubmit={handleSubmit} noValidate className="space-y-4">
        <h3 className={STEP_HEADING}>2. Enter the code the app shows</h3>
        {apiError?.status !== 422 && <ErrorSummary error={mutation.error} />}
        <div className="max-w-xs">
          <TextField
            ref={codeRef}
            label="Authentication code"
            name="code"
            autoComplete="one-time-code"
            inputMode="numeric"
            autoCapitalize="none"
            spellCheck={false}
            maxLength={12}
            value={code}
            onChange={(e) => setCode(e.target.value)}
            error={fieldError}
            required
          />
        </div>
        <div className="flex flex-wrap gap-3">
          <Button type="submit" busy={mutation.isPending}>
            Turn on two-factor authentication
          </Button>
          <Button variant="ghost" onClick={onCancel}>
            Cancel
          </Button>
        </div>
      </form>
    </div>
  );
}

function RecoveryCodesStep({
  codes,
  renewed,
  email,
  headingRef,
  onDone,
}: {
  codes: string[];
  renewed: boolean;
  email: string;
  headingRef: RefObject<HTMLElement | null>;
  onDone: () => void;
}) {
  const [copyStatus, setCopyStatus] = useState('');

  async function copy() {
    const text = recoveryCodesClipboardText(codes);
    try {
      if (!navigator.clipboard?.writeText) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text);
      setCopyStatus('Copied the codes to the clipboard.');
    } catch {
      setCopyStatus('This browser did not let the page copy. Select the codes above and copy them, or download them.');
    }
  }

  function download() {
    const blob = new Blob([recoveryCodesFileText(codes, email, new Date())], { type: 'text/plain;charset=utf-8' });
    downloadBlob(blob, RECOVERY_CODES_FILENAME);
    setCopyStatus(`Downloaded ${RECOVERY_CODES_FILENAME}.`);
  }

  return (
    <div className="space-y-4">
      <p className="flex items-center gap-2 text-sm text-zinc-800">
        <span className="inline-flex items-center rounded-full bg-emerald-50 px-2 py-0.5 text-xs font-medium text-emerald-800 ring-1 ring-inset ring-emerald-200">
          On
        </span>
        {renewed ? 'New recovery codes: the earlier ones no longer work.' : 'Two-factor authentication is now on.'}
      </p>
      <h3 ref={headingRef as RefObject<HTMLHeadingElement>} tabIndex={-1} className={STEP_HEADING}>
        Save your recovery codes
      </h3>
      <div className="rounded-md border border-amber-200 bg-amber-50 px-3 py-2.5 text-sm text-amber-800">
        If you lose your phone, these codes are the only way into your account. Each works once. They are shown only now:
        copy or download them and keep them somewhere safe.
      </div>
      <ul
        aria-label="Recovery codes"
        className="grid grid-cols-1 gap-x-6 gap-y-1.5 rounded-md bg-zinc-50 px-4 py-3 font-mono ring-1 ring-inset ring-zinc-200 text-sm text-zinc-900 sm:grid-cols-2"
      >
        {codes.map((code) => (
          <li key={code} className="select-all">
            {code}
          </li>
        ))}
      </ul>
      <div className="flex flex-wrap items-center gap-3">
        <Button variant="secondary" onClick={() => void copy()}>
          Copy codes
        </Button>
        <Button variant="secondary" onClick={download}>
          Download codes
        </Button>
        <Button onClick={onDone}>Done</Button>
      </div>
      <StatusLine>{copyStatus}</StatusLine>
    </div>
  );
}

function DisableForm({ onCancel, onDisabled }: { onCancel: () => void; onDisabled: () => void }) {
  const session = useRequiredSession();
  return (
    <PasswordConfirmForm
      refusedDetail="Wrong password: two-factor authentication is still on."
      confirmLabel="Turn off"
      action={(password) => disableTotp(session.accessToken, password)}
      onDone={onDisabled}
      onCancel={onCancel}
    >
      Signing in will need only your password again, and your recovery codes stop working. Enter your password to confirm.
    </PasswordConfirmForm>
  );
}
