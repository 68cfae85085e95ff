// Security (/settings/security): two-factor authentication and the password.
import { usePage } from '@/app/usePage';
import { useSyncedMe } from '../useSyncedMe';
import { PasswordSection } from './PasswordSection';
import { SettingsLayout } from './SettingsLayout';
import { TwoFactorSection } from './TwoFactorSection';

export function SecurityPage() {
  const headingRef = usePage('Security');
  // Fresh user data, so "two-factor is on/off" matches the server even if changed elsewhere.
  useSyncedMe();
  return (
    <SettingsLayout title="Security" intro="Keep your account safe." headingRef={headingRef}>
      <TwoFactorSection />
      <PasswordSection />
    </SettingsLayout>
  );
}
